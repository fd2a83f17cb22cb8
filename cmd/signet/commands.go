package main

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/signetdev/signet/postgres"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

func newServeCmd(env *Env) *cobra.Command {
	var configFile, addr, dataDir, publicURL, dbURL string
	var trustedProxies []string
	var dev bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the signet server",
		Long: `Run the signet server. On an empty database it creates the instance admin and
prints its API key once (also saved to <data-dir>/admin-token, mode 0600).
With --dev it also creates the team "default" on the built-in local store.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := DefaultConfig()
			if configFile != "" {
				if err := ReadConfigFile(configFile, &cfg); err != nil {
					return usageError{err}
				}
			}
			f := cmd.Flags()
			if f.Changed("addr") {
				cfg.Addr = addr
			}
			if f.Changed("data-dir") {
				cfg.DataDir = dataDir
			}
			if f.Changed("db") {
				cfg.DB = dbURL
			}
			if f.Changed("public-url") {
				cfg.PublicURL = publicURL
			}
			if f.Changed("trusted-proxy") {
				cfg.TrustedProxies = trustedProxies
			}
			logger, err := newLogger(env, cfg)
			if err != nil {
				return usageError{err}
			}
			gcPercent := tuneGC(os.Getenv)
			logger.Debug("garbage collector", "gogc", gcPercent)
			m := &Main{Config: cfg, Dev: dev, Stdout: env.Stdout, Logger: logger}
			if err := m.Run(cmd.Context()); err != nil {
				return err
			}
			select {
			case <-cmd.Context().Done():
				logger.Info("signet shutting down")
				return m.Close()
			case err := <-m.done:
				m.Close()
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file")
	f.StringVar(&addr, "addr", DefaultConfig().Addr, "address to listen on")
	f.StringVar(&dataDir, "data-dir", DefaultConfig().DataDir, "directory for the database, local blobs and keys")
	f.StringVar(&dbURL, "db", "", "SQLite file (default <data-dir>/signet.db) or postgres://… URL shared by replicas")
	f.StringVar(&publicURL, "public-url", "", "base URL that clients use to reach this server (default http://ADDR)")
	f.StringArrayVar(&trustedProxies, "trusted-proxy", nil, "network (CIDR) of a reverse proxy whose X-Forwarded-For is believed; repeatable")
	f.BoolVar(&dev, "dev", false, `create the team "default" on the built-in local store at first start`)
	return cmd
}

func newMigrateCmd(env *Env) *cobra.Command {
	var dbURL, configFile, appRole string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring a database's schema to this version of signet",
		Long: `Apply pending schema migrations. For PostgreSQL, run it once before starting
replicas of a new version (serve refuses a schema behind or ahead of its own);
with --app-role it also (re)grants the application role its privileges, with no
UPDATE, DELETE or TRUNCATE on the audit log. SQLite files migrate on open.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := DefaultConfig()
			if configFile != "" {
				if err := ReadConfigFile(configFile, &cfg); err != nil {
					return usageError{err}
				}
			}
			if cmd.Flags().Changed("db") {
				cfg.DB = dbURL
			}
			if !isPostgres(cfg.DB) {
				if appRole != "" {
					return usageError{fmt.Errorf("--app-role applies to PostgreSQL only")}
				}
				db, err := openStore(cmd.Context(), cfg, time.Now)
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, "SQLite database is at the current schema version")
				return db.Close()
			}
			from, to, err := postgres.Migrate(cmd.Context(), cfg.DB)
			if err != nil {
				return err
			}
			if from == to {
				fmt.Fprintf(env.Stdout, "schema already at version %d\n", to)
			} else {
				fmt.Fprintf(env.Stdout, "schema migrated from version %d to %d\n", from, to)
			}
			if appRole != "" {
				if err := postgres.Harden(cmd.Context(), cfg.DB, appRole); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "role %s may use signet's tables and only append to the audit log\n", appRole)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dbURL, "db", "", "database: postgres://… URL or SQLite file")
	cmd.Flags().StringVar(&configFile, "config", "", "YAML configuration file (its db key)")
	cmd.Flags().StringVar(&appRole, "app-role", "", "PostgreSQL role that signet serve connects as, to grant least privileges")
	return cmd
}

func newLogger(env *Env, cfg Config) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("log_level %q: use debug, info, warn or error", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log_format %q: use text or json", cfg.LogFormat)
}

func newWhoamiCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the caller and their teams",
		Args:  exactArgs(0),
		RunE: env.withClient(func(cmd *cobra.Command, _ []string, c *sighttp.Client) error {
			w, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			return env.print(w, []string{"USER", "KEY", "ADMIN", "TEAM", "ROLE"}, func(add func(...any)) {
				if len(w.Teams) == 0 {
					add(w.User, w.KeyID, w.Admin, "-", "-")
				}
				for _, m := range w.Teams {
					add(w.User, w.KeyID, w.Admin, m.Team, m.Role)
				}
			})
		}),
	}
}

func printTeams(env *Env, v any, ts ...sighttp.TeamInfo) error {
	return env.print(v, []string{"TEAM", "ROLE", "DOWNLOAD MAX", "UPLOAD MAX", "NETWORKS", "CREATED"}, func(add func(...any)) {
		for _, t := range ts {
			role := t.Role
			if role == "" {
				role = "-"
			}
			nets := "any"
			if len(t.AllowNetworks) > 0 {
				nets = strings.Join(t.AllowNetworks, ",")
			}
			add(t.Name, role, time.Duration(t.DownloadMaxExpiry)*time.Second, time.Duration(t.UploadMaxExpiry)*time.Second, nets, t.CreatedAt.Format(time.RFC3339))
		}
	})
}

func newTeamCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "team", Short: "Manage teams"}
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a team (instance admins)", Args: exactArgs(1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			t, err := c.CreateTeam(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printTeams(env, t, *t)
		}),
	}
	list := &cobra.Command{
		Use: "list", Short: "List the teams you can see", Args: exactArgs(0),
		RunE: env.withClient(func(cmd *cobra.Command, _ []string, c *sighttp.Client) error {
			ts, err := c.Teams(cmd.Context())
			if err != nil {
				return err
			}
			return printTeams(env, ts, ts...)
		}),
	}
	get := &cobra.Command{
		Use: "get NAME", Short: "Show a team", Args: exactArgs(1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			t, err := c.Team(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printTeams(env, t, *t)
		}),
	}
	var dmax, umax time.Duration
	var nets []string
	var anyNet bool
	set := &cobra.Command{
		Use: "set NAME", Short: "Change a team's URL lifetime caps and allowed networks", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req sighttp.UpdateTeamRequest
			var err error
			if cmd.Flags().Changed("download-max") {
				if req.DownloadMaxExpiry, err = seconds("download-max", dmax); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("upload-max") {
				if req.UploadMaxExpiry, err = seconds("upload-max", umax); err != nil {
					return err
				}
			}
			switch {
			case anyNet && len(nets) > 0:
				return usageError{fmt.Errorf("--allow-any-network and --allow-cidr contradict each other")}
			case anyNet:
				req.AllowNetworks = &[]string{}
			case len(nets) > 0:
				req.AllowNetworks = &nets
			}
			if req.DownloadMaxExpiry == nil && req.UploadMaxExpiry == nil && req.AllowNetworks == nil {
				return usageError{fmt.Errorf("nothing to change: give --download-max, --upload-max, --allow-cidr or --allow-any-network")}
			}
			c, err := env.client()
			if err != nil {
				return err
			}
			t, err := c.UpdateTeam(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return printTeams(env, t, *t)
		},
	}
	set.Flags().DurationVar(&dmax, "download-max", 0, "longest lifetime of download URLs (e.g. 30m); at most 1h: team caps only lower the defaults")
	set.Flags().DurationVar(&umax, "upload-max", 0, "longest lifetime of upload URLs (e.g. 12h); at most 24h: team caps only lower the defaults")
	set.Flags().StringArrayVar(&nets, "allow-cidr", nil, "only clients in this network (CIDR) may get URLs; repeatable; replaces the list")
	set.Flags().BoolVar(&anyNet, "allow-any-network", false, "remove the team's network restriction")
	cmd.AddCommand(create, list, get, set)
	return cmd
}

// seconds converts a duration flag to whole seconds, refusing fractions so
// that nothing is silently rounded: the API takes whole seconds, and a
// fraction sent on would come back as a misleading range error.
func seconds(flag string, d time.Duration) (*int64, error) {
	if d%time.Second != 0 {
		return nil, usageError{fmt.Errorf("--%s %s: give whole seconds (e.g. 90s, 15m, 1h)", flag, d)}
	}
	s := int64(d / time.Second)
	return &s, nil
}

func printUsers(env *Env, v any, us ...*signet.User) error {
	return env.print(v, []string{"USER", "SERVICE", "ADMIN", "CREATED"}, func(add func(...any)) {
		for _, u := range us {
			add(u.Name, u.Service, u.Admin, u.CreatedAt.Format(time.RFC3339))
		}
	})
}

func newUserCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users and service accounts"}
	var service, admin bool
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a user (instance admins)", Args: exactArgs(1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			u, err := c.CreateUser(cmd.Context(), args[0], service, admin)
			if err != nil {
				return err
			}
			return printUsers(env, u, u)
		}),
	}
	create.Flags().BoolVar(&service, "service", false, "create a service account (for workloads) rather than a human user")
	create.Flags().BoolVar(&admin, "admin", false, "make the user an instance admin")
	list := &cobra.Command{
		Use: "list", Short: "List users (instance admins)", Args: exactArgs(0),
		RunE: env.withClient(func(cmd *cobra.Command, _ []string, c *sighttp.Client) error {
			us, err := c.Users(cmd.Context())
			if err != nil {
				return err
			}
			return printUsers(env, us, us...)
		}),
	}
	cmd.AddCommand(create, list)
	return cmd
}

func printMembers(env *Env, v any, ms ...*signet.Member) error {
	return env.print(v, []string{"TEAM", "USER", "ROLE"}, func(add func(...any)) {
		for _, m := range ms {
			add(m.Team, m.User, m.Role)
		}
	})
}

func newMemberCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "member", Short: "Manage team membership"}
	var role string
	add := &cobra.Command{
		Use: "add TEAM USER", Short: "Add a user to a team, or change their role", Args: exactArgs(2),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			m, err := c.AddMember(cmd.Context(), args[0], args[1], signet.Role(role))
			if err != nil {
				return err
			}
			return printMembers(env, m, m)
		}),
	}
	add.Flags().StringVar(&role, "role", string(signet.RoleMember), "admin, member or viewer")
	list := &cobra.Command{
		Use: "list TEAM", Short: "List a team's members", Args: exactArgs(1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			ms, err := c.Members(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printMembers(env, ms, ms...)
		}),
	}
	remove := &cobra.Command{
		Use: "remove TEAM USER", Short: "Remove a user from a team", Args: exactArgs(2),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			return c.RemoveMember(cmd.Context(), args[0], args[1])
		}),
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func newKeyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage API keys"}
	create := &cobra.Command{
		Use: "create [USER]", Short: "Create an API key and print its token (shown only once)", Args: rangeArgs(0, 1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			user := ""
			if len(args) == 1 {
				user = args[0]
			}
			k, err := c.CreateKey(cmd.Context(), user)
			if err != nil {
				return err
			}
			if env.jsonOut {
				return env.print(k, nil, nil)
			}
			fmt.Fprintln(env.Stdout, k.Token)
			return nil
		}),
	}
	list := &cobra.Command{
		Use: "list [USER]", Short: "List API keys (never their secrets)", Args: rangeArgs(0, 1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			user := ""
			if len(args) == 1 {
				user = args[0]
			}
			ks, err := c.Keys(cmd.Context(), user)
			if err != nil {
				return err
			}
			return env.print(ks, []string{"ID", "OWNER", "CREATED", "LAST USED", "REVOKED"}, func(add func(...any)) {
				for _, k := range ks {
					add(k.ID, k.User, k.CreatedAt.Format(time.RFC3339), timeOrDash(k.LastUsedAt), timeOrDash(k.RevokedAt))
				}
			})
		}),
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an API key; effective on its next request", Args: exactArgs(1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			return c.RevokeKey(cmd.Context(), args[0])
		}),
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func printConnector(env *Env, c *signet.Connector) error {
	return env.print(c, []string{"TEAM", "BACKEND", "BUCKET", "PREFIX", "REGION", "ENDPOINT", "CREDENTIALS"}, func(add func(...any)) {
		creds := "ambient"
		if c.CredentialsRef != "" {
			creds = "stored (" + c.CredentialsRef + ")"
		}
		if c.Backend == signet.BackendLocal {
			creds = "built-in"
		}
		add(c.Team, c.Backend, c.Bucket, dashIfEmpty(c.Prefix), dashIfEmpty(c.Region), dashIfEmpty(c.Endpoint), creds)
	})
}

func newConnectorCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "connector", Short: "Map a team to its storage bucket"}
	var req sighttp.ConnectorRequest
	var accessKeyID, roleARN, kmsKeyID, account, credentialsFile, hmacAccessID, serviceAccount string
	var roleExternalID, roleSessionName, stsEndpoint, sessionExpires string
	var roleDuration time.Duration
	var pathStyle, sharedKey, revocable bool
	var sourceVPCEs []string
	set := &cobra.Command{
		Use:   "set TEAM",
		Short: "Set the team's storage connector (team admins)",
		Long: `Set the team's storage connector. Every URL issued for the team addresses
only this bucket and prefix.

Backends:
  local  the built-in store; --bucket defaults to the team name.
  s3     AWS S3 or an S3-compatible store (--endpoint, --path-style). With
         --access-key-id the secret is read from SIGNET_SECRET_ACCESS_KEY or,
         if that is unset, from the first line of stdin; it is never a flag.
         Temporary keys add SIGNET_SESSION_TOKEN and their expiry
         (--session-expires or SIGNET_SESSION_EXPIRES, RFC 3339): URLs are
         cut to it and refused once it has passed, since signet cannot
         refresh them (prefer --role-arn or the server's chain, which it
         can). Without --access-key-id the server signs with its own AWS
         credential chain, which only instance admins may grant.
         --role-arn signs with STS AssumeRole sessions of --role-duration
         (default 1h, 15m to 12h); URLs never outlive their session.
  azure  Azure Blob: --account and --container. With --shared-key the
         account key is read from SIGNET_ACCOUNT_KEY or stdin; without it the
         server signs user-delegation SAS with its own Entra ID identity.
         --revocable (with --shared-key) signs against stored access
         policies that signet revoke rotates, withdrawing issued URLs.
  gcs    Google Cloud Storage: --bucket, and --credentials-file (service
         account key) or --hmac-access-id (secret from SIGNET_HMAC_SECRET or
         stdin); without either (instance admins), keyless signing through
         the IAM signBlob API as --service-account EMAIL (default: the
         metadata server's account) with the server's Google credentials.`,
		Example: `  signet connector set ml --backend local --prefix runs/
  SIGNET_SECRET_ACCESS_KEY=... signet connector set ml --backend s3 --bucket ml-data \
      --region eu-west-1 --access-key-id AKIA...`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := map[string]string{}
			if pathStyle {
				opts["path_style"] = "true"
			}
			if roleARN != "" {
				opts["role_arn"] = roleARN
			}
			if roleDuration != 0 {
				opts["role_duration"] = roleDuration.String()
			}
			if roleExternalID != "" {
				opts["role_external_id"] = roleExternalID
			}
			if roleSessionName != "" {
				opts["role_session_name"] = roleSessionName
			}
			if stsEndpoint != "" {
				opts["sts_endpoint"] = stsEndpoint
			}
			if kmsKeyID != "" {
				opts["kms_key_id"] = kmsKeyID
			}
			if len(sourceVPCEs) > 0 {
				opts["source_vpce"] = strings.Join(sourceVPCEs, ",")
			}
			if len(opts) > 0 {
				req.Options = opts
			}
			if account != "" {
				opts["account"] = account
				req.Options = opts
			}
			if serviceAccount != "" {
				opts["service_account"] = serviceAccount
				req.Options = opts
			}
			if revocable {
				opts[sighttp.OptionAzureRevocable] = "true"
				req.Options = opts
			}
			switch {
			case sharedKey:
				key, err := env.readSecret("SIGNET_ACCOUNT_KEY", "account key")
				if err != nil {
					return err
				}
				req.Credentials = map[string]string{"account_key": key}
			case credentialsFile != "":
				b, err := os.ReadFile(credentialsFile)
				if err != nil {
					return usageError{fmt.Errorf("reading --credentials-file: %w", err)}
				}
				req.Credentials = map[string]string{"credentials_json": string(b)}
			case hmacAccessID != "":
				secret, err := env.readSecret("SIGNET_HMAC_SECRET", "HMAC secret")
				if err != nil {
					return err
				}
				req.Credentials = map[string]string{"hmac_access_id": hmacAccessID, "hmac_secret": secret}
			}
			if accessKeyID != "" {
				secret, err := env.readSecret("SIGNET_SECRET_ACCESS_KEY", "secret access key")
				if err != nil {
					return err
				}
				req.Credentials = map[string]string{"access_key_id": accessKeyID, "secret_access_key": secret}
				if tok := env.Getenv("SIGNET_SESSION_TOKEN"); tok != "" {
					exp, err := sessionExpiry(sessionExpires, env.Getenv("SIGNET_SESSION_EXPIRES"), time.Now())
					if err != nil {
						return err
					}
					req.Credentials["session_token"] = tok
					req.Credentials["session_expires"] = exp
				}
			}
			if sessionExpires != "" && req.Credentials["session_token"] == "" {
				return usageError{errors.New("--session-expires needs --access-key-id and SIGNET_SESSION_TOKEN")}
			}
			c, err := env.client()
			if err != nil {
				return err
			}
			conn, err := c.SetConnector(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return printConnector(env, conn)
		},
	}
	f := set.Flags()
	f.StringVar(&req.Backend, "backend", "", "local, s3, azure or gcs")
	f.StringVar(&req.Bucket, "bucket", "", "bucket (for local: a directory name; default the team name)")
	f.StringVar(&req.Bucket, "container", "", "Azure container (same as --bucket)")
	f.StringVar(&account, "account", "", "Azure storage account")
	f.BoolVar(&sharedKey, "shared-key", false, "Azure: sign with the account key from SIGNET_ACCOUNT_KEY or stdin")
	f.BoolVar(&revocable, "revocable", false, "Azure with --shared-key: sign against the container's stored access policies, which signet revoke rotates (uses 3 of its 5 policies)")
	f.StringVar(&credentialsFile, "credentials-file", "", "GCS: service account key file (JSON) to sign with")
	f.StringVar(&hmacAccessID, "hmac-access-id", "", "GCS: HMAC key access id (secret from SIGNET_HMAC_SECRET or stdin)")
	f.StringVar(&serviceAccount, "service-account", "", "GCS: without a key, sign keylessly (IAM signBlob) as this service account e-mail")
	f.StringVar(&req.Prefix, "prefix", "", "key prefix inside the bucket, ending in /")
	f.StringVar(&req.Region, "region", "", "region of the bucket")
	f.StringVar(&req.Endpoint, "endpoint", "", "endpoint URL of an S3-compatible store")
	f.BoolVar(&pathStyle, "path-style", false, "address the bucket in the path, not the host name (MinIO, Ceph)")
	f.StringVar(&accessKeyID, "access-key-id", "", "access key id of the credentials to sign with (secret from SIGNET_SECRET_ACCESS_KEY or stdin)")
	f.StringVar(&sessionExpires, "session-expires", "", "S3: when the SIGNET_SESSION_TOKEN's session ends (RFC 3339; or SIGNET_SESSION_EXPIRES); required with a session token")
	f.StringVar(&roleARN, "role-arn", "", "sign with STS AssumeRole credentials scoped to this bucket and prefix")
	f.DurationVar(&roleDuration, "role-duration", 0, "S3 with --role-arn: session lifetime asked of STS, 15m to 12h within the role's maximum (default 1h); URLs never outlive it")
	f.StringVar(&roleExternalID, "role-external-id", "", "S3 with --role-arn: external id the role's trust policy requires")
	f.StringVar(&roleSessionName, "role-session-name", "", "S3 with --role-arn: name of the role sessions (default signet), shown in CloudTrail")
	f.StringVar(&stsEndpoint, "sts-endpoint", "", "S3 with --role-arn: STS base URL (default: --endpoint when set, else AWS's regional STS)")
	f.StringVar(&kmsKeyID, "kms-key-id", "", "KMS key that uploads must be encrypted with (SSE-KMS)")
	f.StringArrayVar(&sourceVPCEs, "source-vpce", nil, "S3: a VPC endpoint (vpce-...) the team's requests may also come through; in the role session policy and the bucket policy (repeatable)")
	set.MarkFlagRequired("backend")
	get := &cobra.Command{
		Use: "get TEAM", Short: "Show the team's storage connector (never its secrets)", Args: exactArgs(1),
		RunE: env.withClient(func(cmd *cobra.Command, args []string, c *sighttp.Client) error {
			conn, err := c.Connector(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printConnector(env, conn)
		}),
	}
	cmd.AddCommand(set, get)
	return cmd
}

// sessionExpiry checks the expiry of temporary S3 keys, from the flag or
// else the environment, and returns it as RFC 3339: required, and not
// already past.
func sessionExpiry(flag, envValue string, now time.Time) (string, error) {
	v := flag
	if v == "" {
		v = envValue
	}
	if v == "" {
		return "", usageError{errors.New("SIGNET_SESSION_TOKEN holds temporary keys: give their expiry with --session-expires or SIGNET_SESSION_EXPIRES (RFC 3339), " +
			"so URLs are not promised past it; or sign with --role-arn or the server's credential chain, which signet refreshes")}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return "", usageError{fmt.Errorf("session expiry %q is not RFC 3339, such as 2026-11-27T18:00:00Z", v)}
	}
	if !t.After(now) {
		return "", usageError{fmt.Errorf("the session expired at %s; get new temporary keys", t.UTC().Format(time.RFC3339))}
	}
	return t.UTC().Format(time.RFC3339), nil
}

// readSecret returns a secret from the environment variable name or, when
// it is unset, from the first line of stdin. Secrets are never flags.
func (env *Env) readSecret(name, what string) (string, error) {
	if v := env.Getenv(name); v != "" {
		return v, nil
	}
	line, err := bufio.NewReader(env.Stdin).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return "", usageError{fmt.Errorf("no %s: set %s or give it on stdin", what, name)}
	}
	return line, nil
}

func newAuditCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log"}
	var q sighttp.AuditQuery
	var all bool
	list := &cobra.Command{
		Use: "list", Short: "List audit events, oldest first", Args: exactArgs(0),
		RunE: env.withClient(func(cmd *cobra.Command, _ []string, c *sighttp.Client) error {
			var evs []*signet.AuditEvent
			var next string
			for {
				page, err := c.Audit(cmd.Context(), q)
				if err != nil {
					return err
				}
				evs = append(evs, page.Events...)
				next = page.NextCursor
				if !all || next == "" {
					break
				}
				q.Cursor = next
			}
			err := env.print(evs, []string{"ID", "TIME", "ACTOR", "TEAM", "ACTION", "OUTCOME", "OBJECT", "DETAIL"}, func(add func(...any)) {
				for _, e := range evs {
					add(e.ID, e.Time.Format(time.RFC3339), dashIfEmpty(e.ActorUser), dashIfEmpty(e.Team), e.Action, e.Outcome, dashIfEmpty(e.ObjectKey), auditDetail(e))
				}
			})
			// With --json too: stdout stays the array of events, and a
			// script finds the cursor of the next page here.
			if err == nil && next != "" {
				fmt.Fprintf(env.Stderr, "more events: --cursor %s (or --all)\n", next)
			}
			return err
		}),
	}
	lf := list.Flags()
	addAuditQueryFlags(lf, &q)
	lf.StringVar(&q.Cursor, "cursor", "", "continue after this cursor")
	addLimitFlag(lf, &q.Limit, 100, "events per page (1-1000)")
	lf.BoolVar(&all, "all", false, "fetch every page")
	var eq sighttp.AuditQuery
	export := &cobra.Command{
		Use: "export", Short: "Write audit events as JSON lines", Args: exactArgs(0),
		RunE: env.withClient(func(cmd *cobra.Command, _ []string, c *sighttp.Client) error {
			return c.ExportAudit(cmd.Context(), eq, env.Stdout)
		}),
	}
	addAuditQueryFlags(export.Flags(), &eq)
	export.Flags().StringVar(&eq.Cursor, "cursor", "", "start after this event id")
	cmd.AddCommand(list, export, newAuditVerifyCmd(env), newAuditPubkeyCmd(env), newAuditCheckpointCmd(env), newAuditPruneCmd(env))
	cmd.AddCommand(newAuditUsageCmd(env), newAuditIngestCmd(env), newAuditIngesterCmd(env))
	return cmd
}

// auditDetail is the DETAIL column of an audit event: its target (whom
// or what an admin change was about) and its reason, either or both.
func auditDetail(e *signet.AuditEvent) string {
	switch {
	case e.Target != "" && e.Reason != "":
		return e.Target + ": " + e.Reason
	case e.Target != "":
		return e.Target
	}
	return dashIfEmpty(e.Reason)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
