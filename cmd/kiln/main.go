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
	root.AddCommand(buildCmd(), runCmd(), seedCmd(), &cobra.Command{
		Use:   "version",
		Short: "Print kiln's version",
		Run:   func(*cobra.Command, []string) { fmt.Println("kiln", version) },
	})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kiln:", err)
		os.Exit(1)
	}
}
