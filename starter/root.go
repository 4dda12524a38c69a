package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tutti-dev/tutti/internal/config"
)

// Exit codes.
const (
	exitOK    = 0 // done
	exitFail  = 1 // the operation failed: API error, invalid spec, unreachable server
	exitUsage = 2 // the command line was wrong
)

// env reads the environment through a lookup function, so tests need not
// touch the process environment.
type env struct{ lookup func(string) (string, bool) }

func (e env) get(key, def string) string {
	if v, ok := e.lookup(key); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

type cli struct {
	env    env
	stdout io.Writer
	stderr io.Writer
}

func init() {
	// `tutti help` lists the commands in the order they are added.
	cobra.EnableCommandSorting = false
}

// newRoot is the command tree, in the order `tutti help` lists it. Each
// command is built in its own cmd_*.go file.
func (c *cli) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "tutti",
		Short: "Tutti's API server and command-line tool",
		// No command, or one that is not known: the usage, exit 2.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				fmt.Fprintf(c.stderr, "tutti: unknown command %q\n\n", args[0])
			}
			c.usage(c.stderr, cmd)
			return errUsageReported
		},
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetHelpFunc(func(cmd *cobra.Command, _ []string) { c.help(cmd) })
	root.SetUsageFunc(func(cmd *cobra.Command) error { c.commandUsage(c.stderr, cmd); return nil })
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usagef(cmd, "%v", err) })
	root.AddCommand(
		c.newServeCmd(),
		c.newMigrateCmd(),
		c.group("journey", "Journey specs", c.newJourneyValidateCmd(), c.newJourneyPublishCmd(), c.newJourneyPreviewCmd()),
		c.group("contact", "Contacts", c.newContactShowCmd(), c.newContactFindCmd(), c.newContactEraseCmd(), c.newContactMergeCmd(), c.newContactAudiencesCmd(), c.newContactSegmentsCmd()),
		c.newAudienceCmd(),
		c.group("segment", "Segments", c.newSegmentValidateCmd(), c.newSegmentDefineCmd(), c.newSegmentListCmd(), c.newSegmentMembersCmd()),
		c.newExitCmd(),
		c.newWhyCmd(),
		c.newReportCmd(),
		c.newConsentCmd(),
		c.newSuppressCmd(),
		c.newSuppressionsCmd(),
		c.newUnsuppressCmd(),
		c.newOutboxCmd(),
		c.newDeliveriesCmd(),
		c.newUnknownCmd(),
		c.group("events", "Events", c.newEventsSendCmd()),
		c.newScoreCmd(),
		c.group("codec", "Payload encryption keys", c.newCodecNewKeyCmd()),
	)
	return root
}

// run runs one command line and returns the process exit code.
func run(ctx context.Context, args []string, e env, stdout, stderr io.Writer) int {
	c := &cli{env: e, stdout: stdout, stderr: stderr}
	root := c.newRoot()
	if cmd, _, err := root.Find(args); err == nil {
		args = goFlagSyntax(cmd, args)
	}
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	return c.exitCode(root.ExecuteContext(ctx))
}

// leaf is a command that does something: name is its last word ("validate"
// of "journey validate"), args how its arguments read in the usage, summary
// one sentence, positional how many arguments it takes. Its flags are
// declared by the caller on the returned command; run reads them.
func (c *cli) leaf(name, args, summary string, positional int, run func(ctx context.Context, inv *invocation) error) *cobra.Command {
	use := name
	if args != "" {
		use += " " + args
	}
	return &cobra.Command{
		Use:                   use,
		Short:                 summary,
		DisableFlagsInUseLine: true,
		Args: func(cmd *cobra.Command, a []string) error {
			switch {
			case len(a) == positional:
				return nil
			case positional == 0:
				return usagef(cmd, "unexpected argument %q", a[0])
			default:
				return usagef(cmd, "want %s", args)
			}
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			return run(cmd.Context(), &invocation{cmd: cmd, args: a})
		},
	}
}

// group is a command word that only holds subcommands ("journey", "contact").
func (c *cli) group(name, summary string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use:                   name,
		Short:                 summary,
		DisableFlagsInUseLine: true,
		Args:                  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(c.stderr, "%s: missing or unknown subcommand; use one of:\n", cmd.CommandPath())
			for _, sub := range cmd.Commands() {
				fmt.Fprintf(c.stderr, "  %s\n", sub.UseLine())
			}
			return errUsageReported
		},
	}
	g.AddCommand(subs...)
	return g
}

// invocation is one command being run, its flags already parsed.
type invocation struct {
	cmd  *cobra.Command
	args []string // positional arguments
}

func (inv *invocation) usagef(format string, args ...any) error {
	return usagef(inv.cmd, format, args...)
}

// errReported: the failure was already printed (exit 1).
var errReported = errors.New("failure reported")

// errUsageReported: a wrong command line, already explained (exit 2).
var errUsageReported = errors.New("usage reported")

// usageError is a wrong command line (exit 2, with the command's usage).
type usageError struct {
	cmd *cobra.Command
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

func (c *cli) exitCode(err error) int {
	var (
		ue *usageError
		ae *apiError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "%s: %s\n\n", ue.cmd.CommandPath(), ue.msg)
		c.commandUsage(c.stderr, ue.cmd)
		return exitUsage
	case errors.Is(err, errUsageReported):
		return exitUsage
	case errors.Is(err, errReported):
		return exitFail
	case errors.As(err, &ae):
		ae.print(c.stderr)
		return exitFail
	default:
		fmt.Fprintf(c.stderr, "tutti: %v\n", err)
		return exitFail
	}
}

// help is `tutti help`, `tutti --help` and `tutti COMMAND --help`.
func (c *cli) help(cmd *cobra.Command) {
	c.commandUsage(c.stdout, cmd)
}

// commandUsage describes one command: the whole tool for the root, the
// subcommands of a group, the arguments and flags of the others.
func (c *cli) commandUsage(w io.Writer, cmd *cobra.Command) {
	switch {
	case !cmd.HasParent():
		c.usage(w, cmd)
		return
	case cmd.HasAvailableSubCommands():
		fmt.Fprintf(w, "Usage:\n")
		listCommands(w, cmd)
		return
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n", cmd.UseLine(), cmd.Short)
	if cmd.Long != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.Long)
	}
	if cmd.HasAvailableLocalFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", cmd.LocalFlags().FlagUsages())
	}
}

// listCommands prints every command under cmd with its arguments and summary.
func listCommands(w io.Writer, cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		switch {
		case !sub.IsAvailableCommand() || sub.Name() == "help":
		case sub.Name() == "completion":
			shells := make([]string, 0, len(sub.Commands()))
			for _, sh := range sub.Commands() {
				shells = append(shells, sh.Name())
			}
			fmt.Fprintf(w, "  %s %s\n      %s\n", sub.CommandPath(), strings.Join(shells, "|"), sub.Short)
		case sub.HasAvailableSubCommands():
			listCommands(w, sub)
		default:
			fmt.Fprintf(w, "  %s\n      %s\n", sub.UseLine(), sub.Short)
		}
	}
}

// usage is the whole tool's usage.
func (c *cli) usage(w io.Writer, root *cobra.Command) {
	fmt.Fprint(w, `tutti: Tutti's API server and command-line tool.

Usage:
`)
	listCommands(w, root)
	fmt.Fprintf(w, `
Every command except serve, migrate, journey validate and codec new-key calls the API:
  TUTTI_API_URL    the API's base URL (default %s)
  TUTTI_API_TOKEN  its bearer token (default %s, the sandbox dev token)

"tutti COMMAND --help" describes a command's flags.
Exit status: 0 success, 1 failure, 2 wrong usage.
`, defaultAPIURL, config.DevAPIToken)
}

// goFlagSyntax rewrites the single-dash long flags of Go's flag package
// ("-json", "-limit=5"), which tutti read before it moved to cobra, to the
// double-dash form cobra reads. Only flags cmd defines (and -help) are
// rewritten, and the value after a flag that takes one is left alone, so
// arguments and values that start with "-" keep their meaning.
func goFlagSyntax(cmd *cobra.Command, args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || len(name) < 2 || strings.HasPrefix(name, "-") {
			out = append(out, a)
			continue
		}
		f := cmd.Flags().Lookup(name)
		if f == nil && name != "help" {
			out = append(out, a) // unknown: cobra reports it
			continue
		}
		if !strings.HasPrefix(a, "--") {
			a = "-" + a
		}
		out = append(out, a)
		if f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
			i++ // "--limit 5": the value, whatever it looks like
			out = append(out, args[i])
		}
	}
	return out
}
