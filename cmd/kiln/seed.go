package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kilnproject/kiln/builder"
	"github.com/kilnproject/kiln/builder/seed"
)

func seedCmd() *cobra.Command {
	var kind, out, hostname, network string
	c := &cobra.Command{
		Use:   "seed (CONFIG-FILE | SEED-DIR)",
		Short: "Make a NoCloud (CIDATA) or config-drive (config-2) seed image",
		Long: `Seed writes an ISO9660 image that hands a node its configuration on any
hypervisor: --kind nocloud (volume CIDATA with user-data, meta-data,
network-config) or --kind configdrive (volume config-2 with
openstack/latest/meta_data.json, user_data, network_data.json). The input is a
machine config or #cloud-config file, or a directory holding the NoCloud files.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := seedInput(args[0])
			if err != nil {
				return err
			}
			if hostname != "" {
				in.Hostname = hostname
			}
			if network != "" {
				b, err := os.ReadFile(network)
				if err != nil {
					return err
				}
				in.NetworkConfig = b
			}
			epoch, err := builder.EpochFromEnv()
			if err != nil {
				return err
			}
			if err := seed.WriteISO(out, kind, in, epoch); err != nil {
				return err
			}
			fmt.Println(out)
			return nil
		},
	}
	c.Flags().StringVar(&kind, "kind", seed.NoCloud, "nocloud or configdrive")
	c.Flags().StringVarP(&out, "output", "o", "seed.iso", "output image")
	c.Flags().StringVar(&hostname, "hostname", "", "hostname for the generated metadata")
	c.Flags().StringVar(&network, "network-config", "", "network-config file (v1/v2 YAML; network_data.json for configdrive)")
	return c
}
