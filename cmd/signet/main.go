// Command signet is the signet pre-signed URL broker: `signet serve` runs
// the server; every other verb is a client of its HTTP API, configured by
// SIGNET_ADDR and SIGNET_TOKEN.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Run(ctx, os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}))
}

// Env is what a command may touch of its process, so tests can run the
// CLI in process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	jsonOut bool
}

// Run executes the command line args and returns the exit status.
func Run(ctx context.Context, args []string, env *Env) int {
	root := newRootCmd(env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(env.Stderr, "signet: %v\n", err)
			return 2
		}
		fmt.Fprintf(env.Stderr, "signet: %s\n", describe(err))
		return 1
	}
	return 0
}

type usageError struct{ error }

// exactArgs is cobra.ExactArgs with errors marked as usage errors.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// rangeArgs is cobra.RangeArgs with errors marked as usage errors.
func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(min, max)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// describe renders err for a user: the safe message and the stable code.
func describe(err error) string {
	var e *signet.Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%s (%s)", signet.ErrorMessage(err), e.Code)
	}
	return err.Error()
}

func newRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "signet",
		Short:         "A broker that hands out pre-signed URLs for blob storage",
		SilenceUsage:  true,
		SilenceErrors: true,
		Long: `signet hands out pre-signed URLs for blob storage to the members of a team.

Run the server with "signet serve --dev". Every other command is a client of the
server's API: set SIGNET_ADDR (default http://127.0.0.1:8080) and SIGNET_TOKEN
(an API key; the admin key is in <data-dir>/admin-token).`,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().BoolVar(&env.jsonOut, "json", false, "print JSON instead of a table")
	root.AddCommand(
		newServeCmd(env),
		newMigrateCmd(env),
		newWhoamiCmd(env),
		newTeamCmd(env),
		newUserCmd(env),
		newMemberCmd(env),
		newKeyCmd(env),
		newConnectorCmd(env),
		newPresignCmd(env),
		newCpCmd(env),
		newAuditCmd(env),
		newRevokeCmd(env),
		newDoctorCmd(env),
		newPolicyCmd(env),
	)
	root.InitDefaultCompletionCmd() // a group too; cobra would add it later
	refuseUnknownCommands(root)
	return root
}

// refuseUnknownCommands makes every command group under and including c
// (a command that only holds others) refuse a word that names none of its
// commands, as a usage error with cobra's wording and suggestions, and
// show its help when given none. Without this, cobra answers a group
// that cannot run with its help and exit status 0 ("signet audit bogus"
// succeeds), and parses the group's flags before that, so "signet audit
// lsit --team ml" complains of --team instead of the word lsit. So a
// group parses its flags itself, after looking for the word: its only
// flags are --help and the persistent ones.
func refuseUnknownCommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownCommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.DisableFlagParsing = true
	c.DisableFlagsInUseLine = true // "signet team", not "signet team [flags]"
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor alone does not apply
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		w, ok := firstWord(cmd.Flags(), args)
		if !ok {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", w, cmd.CommandPath())
		if s := cmd.SuggestionsFor(w); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return usageError{errors.New(msg)}
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cmd.Flags().Parse(args); err != nil {
			return usageError{err}
		}
		return cmd.Help()
	}
}

// firstWord returns the first of args that is neither a flag nor the
// value of one, as cobra looks for a command's name: a flag that fs does
// not know is taken to have a value, unless given as --flag=value.
func firstWord(fs *pflag.FlagSet, args []string) (string, bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return args[i+1], true
			}
			return "", false
		case len(a) < 2 || a[0] != '-':
			return a, true
		case strings.Contains(a, "="):
		case strings.HasPrefix(a, "--"):
			if f := fs.Lookup(a[2:]); f == nil || f.NoOptDefVal == "" {
				i++
			}
		case len(a) == 2:
			if f := fs.ShorthandLookup(a[1:]); f == nil || f.NoOptDefVal == "" {
				i++
			}
		}
	}
	return "", false
}

// client returns an API client from SIGNET_ADDR and SIGNET_TOKEN. The token
// is never accepted as a flag, so it stays out of shell history and ps.
func (env *Env) client() (*sighttp.Client, error) {
	addr := env.Getenv("SIGNET_ADDR")
	if addr == "" {
		addr = "http://127.0.0.1:8080"
	}
	token := strings.TrimSpace(env.Getenv("SIGNET_TOKEN"))
	if token == "" {
		return nil, usageError{errors.New("SIGNET_TOKEN is not set; export an API key (the admin key is in <data-dir>/admin-token)")}
	}
	c := sighttp.NewClient(addr, token)
	c.UserAgent = "signet-cli"
	return c, nil
}

// print writes v as JSON with --json, or as a table of header and rows.
func (env *Env) print(v any, header []string, rows func(add func(cols ...any))) error {
	if env.jsonOut {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	rows(func(cols ...any) {
		s := make([]string, len(cols))
		for i, c := range cols {
			s[i] = tableCell(fmt.Sprint(c))
		}
		fmt.Fprintln(tw, strings.Join(s, "\t"))
	})
	return tw.Flush()
}

// tableCell renders s for a table cell. Cells hold what others chose
// (refused object keys, user agents, names), so every character that a
// terminal or the table would act on rather than show is escaped as in a
// Go string literal: control characters (tab and newline among them,
// which end a cell or a row), DEL, C1 controls, other non-printing runes
// such as bidirectional overrides, and bytes that are not UTF-8. A
// backslash is doubled, so an escape in the output always stands for the
// byte it names and never for the text of one.
func tableCell(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == '\\' || r == utf8.RuneError || !printable(r) }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case printable(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r) // '\n', '\x1b', '\u0085'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// printable reports whether a table shows r as itself.
func printable(r rune) bool { return r == ' ' || strconv.IsPrint(r) }

// withClient adapts a verb that talks to the API into a cobra RunE: it
// builds the client from SIGNET_ADDR and SIGNET_TOKEN, so a missing token
// is refused before the verb runs.
func (env *Env) withClient(run func(cmd *cobra.Command, args []string, c *sighttp.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := env.client()
		if err != nil {
			return err
		}
		return run(cmd, args, c)
	}
}
