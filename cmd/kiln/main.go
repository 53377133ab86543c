// Command kiln builds immutable Kubernetes appliance images and runs them.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is stamped at build time with -X main.version=...
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "kiln",
		Short:         "Build and run immutable, bootable Kubernetes appliance images",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(buildCmd(), runCmd(), seedCmd(), genCmd(), versionCmd())
	root.AddCommand(nodeCommands()...)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kiln:", err)
		os.Exit(1)
	}
}
