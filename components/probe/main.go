// Command kiln-probe checks a cluster from inside a pod: it serves HTTP
// (answering with the pod's hostname, so a client can tell replicas apart),
// resolves names through the cluster DNS and fetches URLs, retrying until a
// deadline. It is the only file of the kiln-probe image.
//
//	kiln-probe serve [--listen :8080]
//	kiln-probe lookup NAME [--timeout 60s]
//	kiln-probe get URL [--timeout 60s] [--expect SUBSTR]
//	kiln-probe version
//
// Exit status: 0 on success, 1 when a check fails (one line on stderr with
// the last error), 2 for bad arguments.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set at link time (-X main.version=...).
var version = "unknown"

const usage = "usage: kiln-probe serve [--listen :8080] | lookup NAME [--timeout 60s] | get URL [--timeout 60s] [--expect SUBSTR] | version"

func main() {
	// The probe is a container's PID 1, which the kernel sends no signal
	// it has not asked for: SIGTERM and SIGINT are handled here.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		sig := <-sigs
		cancel(fmt.Errorf("got %v", sig))
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a bad command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func badUsage(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// run executes one subcommand and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(stdout, usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "kiln-probe: %v (%s)\n", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "kiln-probe: %v\n", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return badUsage("no subcommand")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints the one error line
	switch cmd {
	case "serve":
		listen := fs.String("listen", ":8080", "address to listen on")
		if _, err := parseArgs(fs, args, ""); err != nil {
			return err
		}
		return serve(ctx, *listen, stderr)
	case "lookup":
		timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
		name, err := parseArgs(fs, args, "NAME")
		if err != nil {
			return err
		}
		if name == "" {
			return badUsage("lookup: empty NAME")
		}
		if *timeout <= 0 {
			return badUsage("lookup: --timeout %v: want a positive duration", *timeout)
		}
		return lookup(ctx, resolver, name, *timeout, stdout)
	case "get":
		timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
		expect := fs.String("expect", "", "the body must contain this")
		url, err := parseArgs(fs, args, "URL")
		if err != nil {
			return err
		}
		if *timeout <= 0 {
			return badUsage("get: --timeout %v: want a positive duration", *timeout)
		}
		return get(ctx, url, *expect, *timeout, stdout)
	case "version", "-v", "--version", "-version":
		if len(args) > 0 {
			return badUsage("%s takes no arguments", cmd)
		}
		fmt.Fprintln(stdout, "kiln-probe", version)
		return nil
	case "-h", "--help", "-help", "help":
		return flag.ErrHelp
	default:
		return badUsage("unknown subcommand %q", cmd)
	}
}

// parseArgs parses flags given before or after the positional argument
// (the flag package stops at the first positional one) and returns that
// argument: exactly one when posName names it, none when posName is "".
func parseArgs(fs *flag.FlagSet, args []string, posName string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", badUsage("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case posName == "" && len(pos) > 0:
		return "", badUsage("%s: unexpected argument %q", fs.Name(), pos[0])
	case posName == "":
		return "", nil
	case len(pos) == 0:
		return "", badUsage("%s: missing %s", fs.Name(), posName)
	case len(pos) > 1:
		return "", badUsage("%s: one %s wanted, got %q", fs.Name(), posName, pos)
	}
	return pos[0], nil
}
