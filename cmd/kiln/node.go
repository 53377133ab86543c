package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnproject/kiln/initd/nodeapi"
)

// nodeFlags are the flags every node-API verb takes.
type nodeFlags struct {
	node, config string
}

func (f *nodeFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.node, "node", "", "node address, HOST[:PORT] (default: the first endpoint in the client config; port 50000)")
	c.Flags().StringVar(&f.config, "config", "", "client config from `kiln gen config` (default $KILNCONFIG, else ./kilnconfig)")
}

// requestTimeout bounds one call; nodes under emulation answer slowly.
const requestTimeout = 2 * time.Minute

// call wraps a verb: it connects with the flags' client config and gives
// the verb a context bounded by requestTimeout.
func (f *nodeFlags) call(verb func(ctx context.Context, cl *nodeapi.Client, node string, args []string) error) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		cl, node, err := f.client()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		return verb(ctx, cl, node, args)
	}
}

func (f *nodeFlags) client() (*nodeapi.Client, string, error) {
	path := f.config
	if path == "" {
		path = os.Getenv("KILNCONFIG")
	}
	if path == "" {
		path = "kilnconfig"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("client config: %w (make one with kiln gen config, pass --config or set KILNCONFIG)", err)
	}
	cfg, err := nodeapi.ParseClientConfig(path, data)
	if err != nil {
		return nil, "", err
	}
	node := f.node
	if node == "" {
		if len(cfg.Endpoints) == 0 {
			return nil, "", fmt.Errorf("%s has no endpoints: pass --node", path)
		}
		node = cfg.Endpoints[0]
	}
	c, err := nodeapi.NewClient(cfg, node)
	return c, nodeapi.Address(node), err
}

func nodeCommands() []*cobra.Command {
	return []*cobra.Command{statusCmd(), healthCmd(), logsCmd(), kubeconfigCmd(), powerCmd("reboot", nodeapi.Reboot), powerCmd("shutdown", nodeapi.Shutdown)}
}

func statusCmd() *cobra.Command {
	var f nodeFlags
	c := &cobra.Command{
		Use:   "status",
		Short: "Show a node's version and the state of its services",
		Args:  cobra.NoArgs,
		RunE: f.call(func(ctx context.Context, cl *nodeapi.Client, node string, args []string) error {
			v, err := cl.Version(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", node, err)
			}
			svcs, err := cl.Services(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", node, err)
			}
			fmt.Printf("node %s: %s, kernel %s, %s, hostname %s, role %s\n", node, orDash(v.OS), v.Kernel, v.Arch, orDash(v.Hostname), orDash(v.Role))
			if len(svcs) == 0 {
				fmt.Println("no services")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tRESTARTS")
			for _, s := range svcs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", s.Name, s.State, s.PID, s.Restarts)
			}
			return tw.Flush()
		}),
	}
	f.add(c)
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func healthCmd() *cobra.Command {
	var f nodeFlags
	c := &cobra.Command{
		Use:   "health",
		Short: "Show a node's health checks; exits non-zero when one fails",
		Args:  cobra.NoArgs,
		RunE: f.call(func(ctx context.Context, cl *nodeapi.Client, node string, args []string) error {
			h, err := cl.Health(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", node, err)
			}
			for _, c := range h.Checks {
				mark := "ok  "
				if !c.OK {
					mark = "FAIL"
				}
				fmt.Printf("%s %s", mark, c.Name)
				if c.Detail != "" {
					fmt.Printf(": %s", c.Detail)
				}
				fmt.Println()
				for _, e := range c.Errors {
					fmt.Printf("     %s\n", e)
				}
			}
			if !h.Healthy {
				return fmt.Errorf("%s is not healthy: %s", node, strings.Join(failedNames(h), ", "))
			}
			fmt.Printf("%s: all checks passed\n", node)
			return nil
		}),
	}
	f.add(c)
	return c
}

func failedNames(h *nodeapi.Health) []string {
	var n []string
	for _, c := range h.Checks {
		if !c.OK {
			n = append(n, c.Name)
		}
	}
	return n
}

func logsCmd() *cobra.Command {
	var f nodeFlags
	var follow bool
	var tail int
	c := &cobra.Command{
		Use:   "logs SERVICE",
		Short: "Print a service's log (initd for the init daemon's own)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, node, err := f.client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			if !follow {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, requestTimeout)
				defer cancel()
			}
			if err := cl.Logs(ctx, os.Stdout, args[0], tail, follow); err != nil {
				return fmt.Errorf("%s: %w", node, err)
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the service logs")
	c.Flags().IntVar(&tail, "tail", 0, "only the last N lines (0: all)")
	return c
}

func kubeconfigCmd() *cobra.Command {
	var f nodeFlags
	var out string
	c := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Fetch the admin kubeconfig from a control-plane node",
		Args:  cobra.NoArgs,
		RunE: f.call(func(ctx context.Context, cl *nodeapi.Client, node string, args []string) error {
			data, err := cl.Kubeconfig(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", node, err)
			}
			if out == "-" {
				_, err := os.Stdout.Write(data)
				return err
			}
			if err := writeSecret(out, data); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "wrote %s (mode 0600)\n", out)
			return nil
		}),
	}
	f.add(c)
	c.Flags().StringVarP(&out, "output", "o", "kubeconfig", "file to write (- for standard output)")
	return c
}

func powerCmd(verb, action string) *cobra.Command {
	var f nodeFlags
	c := &cobra.Command{
		Use:   verb,
		Short: fmt.Sprintf("Ask a node to %s cleanly (services stopped, filesystems unmounted)", map[string]string{"reboot": "reboot", "shutdown": "power off"}[verb]),
		Args:  cobra.NoArgs,
		RunE: f.call(func(ctx context.Context, cl *nodeapi.Client, node string, args []string) error {
			if err := cl.Power(ctx, action); err != nil {
				return fmt.Errorf("%s: %w", node, err)
			}
			fmt.Printf("%s: %s requested\n", node, action)
			return nil
		}),
	}
	f.add(c)
	return c
}

func versionCmd() *cobra.Command {
	var f nodeFlags
	c := &cobra.Command{
		Use:   "version",
		Short: "Print kiln's version, and a node's with --node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Println("kiln", version)
			if f.node == "" {
				return nil
			}
			cl, node, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			v, err := cl.Version(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", node, err)
			}
			fmt.Printf("node %s: version %s (%s), kernel %s, %s\n", node, orDash(v.Version), orDash(v.OS), v.Kernel, v.Arch)
			return nil
		},
	}
	f.add(c)
	return c
}
