package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/signetdev/signet"
	sighttp "github.com/signetdev/signet/http"
	"github.com/signetdev/signet/transfer"
)

const scheme = "signet://"

// remote is a parsed signet://TEAM/KEY address.
type remote struct{ team, key string }

func (r remote) String() string { return scheme + r.team + "/" + r.key }

func parseRemote(s string) (remote, bool, error) {
	rest, ok := strings.CutPrefix(s, scheme)
	if !ok {
		return remote{}, false, nil
	}
	team, key, _ := strings.Cut(rest, "/")
	if team == "" {
		return remote{}, true, usageError{fmt.Errorf("%q: expected signet://TEAM/KEY", s)}
	}
	return remote{team: team, key: key}, true, nil
}

// cpFlags are the flags of signet cp.
type cpFlags struct {
	o         transfer.Options
	recursive bool
	quiet     bool
	resumeDir string
	files     int
}

func newCpCmd(env *Env) *cobra.Command {
	var f cpFlags
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy files to or from a team's storage",
		Long: `Copy files between the local disk and a team's storage, moving the bytes
directly to or from the store through pre-signed URLs. One side is a local path
("-" for stdin/stdout), the other signet://TEAM/KEY. A KEY ending in "/" takes
the local file's name. With -r, SRC may be a directory: every regular file
below it is uploaded as KEY/ followed by its path relative to SRC (symbolic
links to files inside SRC are followed; links that point outside SRC make
the copy fail before anything is sent; anything else that is not a regular
file is skipped and reported). With -r and SRC signet://TEAM/PREFIX/, every
object below PREFIX is downloaded into the directory DST at its path after
PREFIX, --files at a time; keys that would land outside DST make the copy
fail before anything is written, and files already complete (same size, and
same SHA-256 where the listing has one, else the object's time) are skipped.

Large files go in parallel parts and resume: if an upload is interrupted,
running the same command again sends only the parts the store does not hold
yet. The state of uploads in flight is kept in --resume-dir (default
$SIGNET_RESUME_DIR, else signet/uploads in the user's cache directory); it
holds no key and no URL.

Every upload declares its SHA-256, which the store checks. Downloads are
checked against the SHA-256 signet finds for the object in the store (the
store's own checksum, or the one signet recorded when it completed a
verified upload); a mismatch fails and leaves no file. The summary says
when no SHA-256 was known.

On a terminal, progress bars are drawn on stderr (one line per file); with
--quiet nothing is printed unless something fails. --json prints a summary
to stdout.`,
		Example: `  signet cp ./model.bin signet://ml/checkpoints/model.bin
  signet cp signet://ml/checkpoints/model.bin ./copy.bin
  signet cp -r ./run-42/ signet://ml/runs/42/
  signet cp -r signet://ml/runs/42/ ./run-42/
  tar c ./data | signet cp - signet://ml/data.tar`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCp(cmd.Context(), env, &f, args[0], args[1])
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.o.Concurrency, "concurrency", transfer.DefaultConcurrency, "parts moved in parallel")
	fl.Int64Var(&f.o.PartSize, "part-size", 0, "part size in bytes for chunked uploads (default: chosen by the server)")
	fl.StringVar(&f.o.ContentType, "content-type", "", "Content-Type to bind to the upload")
	fl.BoolVarP(&f.recursive, "recursive", "r", false, "copy a directory tree, or every object below a prefix")
	fl.IntVar(&f.files, "files", transfer.DefaultFiles, "files moved at once by a recursive download")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print nothing unless something fails")
	fl.StringVar(&f.resumeDir, "resume-dir", "", "directory for the state of interrupted uploads (default $SIGNET_RESUME_DIR or <user cache dir>/signet/uploads)")
	return cmd
}

func runCp(ctx context.Context, env *Env, f *cpFlags, srcArg, dstArg string) error {
	src, srcRemote, err := parseRemote(srcArg)
	if err != nil {
		return err
	}
	dst, dstRemote, err := parseRemote(dstArg)
	if err != nil {
		return err
	}
	switch {
	case srcRemote == dstRemote:
		return usageError{errors.New("exactly one of SRC and DST must be a signet://TEAM/KEY address")}
	case srcRemote && f.recursive && dstArg == "-":
		return usageError{errors.New("-r downloads into a directory, not stdout")}
	case f.files < 1:
		return usageError{errors.New("--files must be at least 1")}
	case srcRemote && dstArg == "-" && env.jsonOut:
		return usageError{errors.New("--json writes the summary to stdout; it cannot be combined with a download to stdout")}
	case dstRemote && srcArg == "-" && f.recursive:
		return usageError{errors.New("-r needs a directory, not stdin")}
	}
	c, err := env.client()
	if err != nil {
		return err
	}
	o := f.o
	o.ResumeDir = f.resumeDir
	if o.ResumeDir == "" {
		o.ResumeDir = env.Getenv("SIGNET_RESUME_DIR")
	}
	if o.ResumeDir == "" {
		if d := userCacheDir(env.Getenv); d != "" {
			o.ResumeDir = filepath.Join(d, "signet", "uploads")
		}
	}
	cp := &copier{env: env, c: c, o: o, quiet: f.quiet, bars: !f.quiet && isTerminal(env.Stderr), start: time.Now()}

	if srcRemote && f.recursive {
		return cp.finish(cp.downloadTree(ctx, src, dstArg, f.files))
	}
	if srcRemote {
		if src.key == "" || strings.HasSuffix(src.key, "/") {
			return usageError{fmt.Errorf("%q names no object", srcArg)}
		}
		err = cp.download(ctx, src, dstArg)
		return cp.finish(err)
	}
	if srcArg != "-" {
		if fi, err := os.Stat(srcArg); err == nil && fi.IsDir() {
			if !f.recursive {
				return usageError{fmt.Errorf("%s is a directory; use -r to copy a directory tree", srcArg)}
			}
			return cp.finish(cp.uploadTree(ctx, srcArg, dst))
		}
	}
	if dst.key == "" || strings.HasSuffix(dst.key, "/") {
		if srcArg == "-" {
			return usageError{errors.New("a KEY is required when copying from stdin")}
		}
		dst.key += filepath.Base(srcArg)
	}
	return cp.finish(cp.upload(ctx, srcArg, dst))
}

// cpFile is one file of the summary signet cp prints with --json.
type cpFile struct {
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	Size int64  `json:"size"`
	// SHA256 is the hex SHA-256 of the bytes moved.
	SHA256 string `json:"sha256,omitempty"`
	// Verified is true when the store checked SHA256 (uploads) or
	// reported the SHA-256 that the bytes received match (downloads).
	Verified     bool    `json:"verified"`
	Parts        int     `json:"parts"`
	ResumedParts int     `json:"resumed_parts"`
	Seconds      float64 `json:"seconds"`
	// Error and Code describe a failed copy.
	Error string      `json:"error,omitempty"`
	Code  signet.Code `json:"code,omitempty"`
}

// cpSkipped is an entry of a directory tree that was not copied.
type cpSkipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// cpSummary is what signet cp prints with --json.
type cpSummary struct {
	Files   []cpFile    `json:"files"`
	Copied  int         `json:"copied"`
	Failed  int         `json:"failed"`
	Skipped []cpSkipped `json:"skipped,omitempty"`
	Bytes   int64       `json:"bytes"`
	Seconds float64     `json:"seconds"`
}

// copier runs the copies of one signet cp and reports them.
type copier struct {
	env   *Env
	c     *sighttp.Client
	o     transfer.Options
	quiet bool
	bars  bool // draw progress bars on stderr
	tree  bool // copying a directory tree
	start time.Time
	sum   cpSummary
}

// upload copies the local file src ("-": stdin) to dst.
func (cp *copier) upload(ctx context.Context, src string, dst remote) error {
	return cp.copy(ctx, src, dst.String(), func(o *transfer.Options) (*transfer.Result, error) {
		if src == "-" {
			return transfer.UploadStream(ctx, cp.c, dst.team, dst.key, cp.env.Stdin, o)
		}
		return transfer.UploadFile(ctx, cp.c, dst.team, dst.key, src, o)
	})
}

// download copies src to the local path dst ("-": stdout; a directory:
// the key's last element in it).
func (cp *copier) download(ctx context.Context, src remote, dst string) error {
	if dst != "-" && (strings.HasSuffix(dst, "/") || isDir(dst)) {
		dst = filepath.Join(dst, path.Base(src.key))
	}
	return cp.copy(ctx, src.String(), dst, func(o *transfer.Options) (*transfer.Result, error) {
		if dst == "-" {
			return transfer.Download(ctx, cp.c, src.team, src.key, cp.env.Stdout, o)
		}
		return transfer.DownloadFile(ctx, cp.c, src.team, src.key, dst, o)
	})
}

// copy runs one copy from src to dst with progress, and records it.
func (cp *copier) copy(ctx context.Context, src, dst string, run func(*transfer.Options) (*transfer.Result, error)) error {
	o := cp.o
	var bar *progressBar
	if cp.bars {
		bar = &progressBar{w: cp.env.Stderr, desc: src}
		if !cp.tree {
			bar.desc = src + " → " + dst
		}
		o.Progress = bar.update
	}
	start := time.Now()
	res, err := run(&o)
	bar.finish(err == nil)
	f := cpFile{Src: src, Dst: dst, Seconds: time.Since(start).Seconds()}
	if err != nil {
		f.Error, f.Code = signet.ErrorMessage(err), signet.ErrorCode(err)
		if _, ok := errors.AsType[*signet.Error](err); !ok {
			f.Error = err.Error() // a local error: a path, not a secret
		}
		cp.sum.Files = append(cp.sum.Files, f)
		cp.sum.Failed++
		return err
	}
	f.Size, f.SHA256, f.Verified, f.Parts, f.ResumedParts = res.Size, res.SHA256, res.Verified, res.Parts, res.ResumedParts
	cp.sum.Files = append(cp.sum.Files, f)
	cp.sum.Copied++
	cp.sum.Bytes += res.Size
	if !cp.quiet && !cp.env.jsonOut && !(cp.bars && cp.tree) {
		fmt.Fprintln(cp.env.Stderr, describeCopy(&f))
	}
	return nil
}

// describeCopy renders a successful copy for a person.
func describeCopy(f *cpFile) string {
	verb, check := "uploaded", ""
	if strings.HasPrefix(f.Src, scheme) {
		verb, check = "downloaded", " (not verified: the store reports no checksum)"
		if f.Verified {
			check = " (verified)"
		}
	}
	s := fmt.Sprintf("%s %s to %s: %d bytes, sha256 %s%s", verb, f.Src, f.Dst, f.Size, f.SHA256, check)
	if f.ResumedParts > 0 {
		s += fmt.Sprintf("; resumed, %d of %d parts were already stored", f.ResumedParts, f.Parts)
	}
	return s
}

// uploadTree uploads every regular file below dir to dst's key as a
// prefix. A file that fails is reported and the others still go; the
// error then says how many failed.
func (cp *copier) uploadTree(ctx context.Context, dir string, dst remote) error {
	files, skipped, err := planTree(dir)
	if err != nil {
		return err
	}
	cp.tree = true
	cp.sum.Skipped = skipped
	if !cp.quiet {
		for _, s := range skipped {
			fmt.Fprintf(cp.env.Stderr, "signet: skipped %s: %s\n", s.Path, s.Reason)
		}
	}
	prefix := dst.key
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		to := remote{team: dst.team, key: prefix + filepath.ToSlash(f.rel)}
		if err := cp.upload(ctx, f.path, to); err != nil {
			if ctx.Err() != nil {
				return err
			}
			fmt.Fprintf(cp.env.Stderr, "signet: %s: %s\n", f.path, describe(err))
		}
	}
	if !cp.quiet && !cp.env.jsonOut {
		fmt.Fprintf(cp.env.Stderr, "copied %d files (%d bytes) from %s to %s in %.1fs; %d failed, %d skipped\n",
			cp.sum.Copied, cp.sum.Bytes, dir, dst, time.Since(cp.start).Seconds(), cp.sum.Failed, len(skipped))
	}
	if cp.sum.Failed > 0 {
		return fmt.Errorf("%d of %d files failed", cp.sum.Failed, len(files))
	}
	return nil
}

// downloadTree downloads every object below src's key (a folder) into
// the directory dir, printing one line per file as it ends. A file that
// fails is reported and the others still go.
func (cp *copier) downloadTree(ctx context.Context, src remote, dir string, files int) error {
	cp.tree = true
	talk := !cp.quiet && !cp.env.jsonOut
	do := &transfer.DirOptions{Options: cp.o, Files: files}
	do.Done = func(fr *transfer.FileResult) {
		f := cpFile{Src: remote{team: src.team, key: fr.Key}.String(), Dst: fr.Path, Seconds: fr.Elapsed.Seconds()}
		switch {
		case fr.Err != nil:
			f.Error, f.Code = signet.ErrorMessage(fr.Err), signet.ErrorCode(fr.Err)
			cp.sum.Files = append(cp.sum.Files, f)
			cp.sum.Failed++
			fmt.Fprintf(cp.env.Stderr, "signet: %s: %s\n", f.Src, describe(fr.Err))
		case fr.Skipped:
			cp.sum.Skipped = append(cp.sum.Skipped, cpSkipped{Path: fr.Path, Reason: "already complete"})
			if talk {
				fmt.Fprintf(cp.env.Stderr, "skipped %s: %s is already complete\n", f.Src, fr.Path)
			}
		default:
			r := fr.Result
			f.Size, f.SHA256, f.Verified, f.Parts = r.Size, r.SHA256, r.Verified, r.Parts
			cp.sum.Files = append(cp.sum.Files, f)
			cp.sum.Copied++
			cp.sum.Bytes += r.Size
			if talk {
				fmt.Fprintln(cp.env.Stderr, describeCopy(&f))
			}
		}
	}
	res, err := transfer.DownloadDir(ctx, cp.c, src.team, src.key, dir, do)
	if res == nil {
		return err // nothing was copied: the listing failed or was refused
	}
	if talk {
		fmt.Fprintf(cp.env.Stderr, "copied %d files (%d bytes) from %s to %s in %.1fs; %d failed, %d already complete\n",
			res.Copied, res.Bytes, src, dir, time.Since(cp.start).Seconds(), res.Failed, res.Skipped)
	}
	if err != nil && res.Failed > 0 && ctx.Err() == nil {
		return fmt.Errorf("%d of %d files failed", res.Failed, len(res.Files))
	}
	return err
}

// finish prints the summary with --json, even after a failure, and
// returns err.
func (cp *copier) finish(err error) error {
	var ue usageError
	if !cp.env.jsonOut || errors.As(err, &ue) {
		return err
	}
	cp.sum.Seconds = time.Since(cp.start).Seconds()
	if cp.sum.Files == nil {
		cp.sum.Files = []cpFile{}
	}
	if perr := cp.env.print(&cp.sum, nil, nil); err == nil {
		err = perr
	}
	return err
}

// treeFile is a file to upload from a directory tree.
type treeFile struct {
	path string // to open
	rel  string // relative to the tree's root
}

// planTree lists the regular files below dir, in lexical order, and the
// entries it will not copy. Symbolic links are followed to files inside
// dir; a link to anything outside dir is refused with an error, so that
// nothing is copied, and links to directories are not followed.
func planTree(dir string) ([]treeFile, []cpSkipped, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, nil, err
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, nil, err
	}
	var files []treeFile
	var skipped []cpSkipped
	var escapes []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		shown := filepath.Join(dir, rel)
		switch t := d.Type(); {
		case t.IsRegular():
			files = append(files, treeFile{path: shown, rel: rel})
		case t&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				skipped = append(skipped, cpSkipped{shown, "broken symbolic link"})
				return nil
			}
			if !within(root, target) {
				escapes = append(escapes, shown)
				return nil
			}
			fi, err := os.Stat(target)
			switch {
			case err != nil:
				skipped = append(skipped, cpSkipped{shown, "broken symbolic link"})
			case fi.Mode().IsRegular():
				files = append(files, treeFile{path: shown, rel: rel})
			case fi.IsDir():
				skipped = append(skipped, cpSkipped{shown, "symbolic link to a directory (not followed)"})
			default:
				skipped = append(skipped, cpSkipped{shown, "symbolic link to something that is not a regular file"})
			}
		default:
			skipped = append(skipped, cpSkipped{shown, "not a regular file"})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(escapes) > 0 {
		more := ""
		if len(escapes) > 3 {
			more = fmt.Sprintf(" and %d more", len(escapes)-3)
			escapes = escapes[:3]
		}
		return nil, nil, fmt.Errorf("refusing to copy %s: symbolic links point outside it: %s%s", dir, strings.Join(escapes, ", "), more)
	}
	return files, skipped, nil
}

// within reports whether p is dir or below it; both are clean and
// absolute.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && !filepath.IsAbs(rel) && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// userCacheDir is os.UserCacheDir reading the environment through getenv,
// so that a command sees only the environment its Env gives it. It returns
// "" when there is none.
func userCacheDir(getenv func(string) string) string {
	var dir string
	switch runtime.GOOS {
	case "windows":
		dir = getenv("LocalAppData")
	case "darwin", "ios":
		if h := getenv("HOME"); h != "" {
			dir = filepath.Join(h, "Library", "Caches")
		}
	case "plan9":
		if h := getenv("home"); h != "" {
			dir = filepath.Join(h, "lib", "cache")
		}
	default:
		dir = getenv("XDG_CACHE_HOME")
		if dir == "" {
			if h := getenv("HOME"); h != "" {
				dir = filepath.Join(h, ".cache")
			}
		}
	}
	if !filepath.IsAbs(dir) {
		return ""
	}
	return dir
}

// progressBar draws the progress of one transfer on a terminal: bytes,
// rate and time left. It is created at the first report of a known size.
// When a resumed upload starts with bytes already stored, the bar counts
// the bytes left to send and says how much was stored.
type progressBar struct {
	w    io.Writer
	desc string
	bar  *progressbar.ProgressBar
	base int64 // bytes done before this run
}

// update is a transfer.Options.Progress function.
func (p *progressBar) update(done, total int64) {
	if p.bar == nil {
		if total < 0 || total == done {
			return
		}
		p.base = done
		desc := p.desc
		if done > 0 {
			desc += fmt.Sprintf(" (%s already stored)", formatBytes(done))
		}
		w := p.w
		p.bar = progressbar.NewOptions64(total-done,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(25),
			progressbar.OptionThrottle(100*time.Millisecond),
			// No spinner: it would need a goroutine of its own.
			progressbar.OptionSetSpinnerChangeInterval(0),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
	}
	p.bar.Set64(done - p.base)
}

// finish ends the bar's line: full when the transfer succeeded, as it was
// otherwise. A transfer that moved nothing gets a line of its own.
func (p *progressBar) finish(ok bool) {
	switch {
	case p == nil:
	case p.bar == nil && ok:
		fmt.Fprintf(p.w, "%s: done\n", p.desc)
	case p.bar == nil:
	case ok:
		p.bar.Finish()
	default:
		p.bar.Exit()
	}
}

// formatBytes renders n in IEC units, e.g. "12.5 MiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
