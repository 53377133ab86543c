package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnproject/kiln/arch"
	"github.com/kilnproject/kiln/builder"
	"github.com/kilnproject/kiln/builder/seed"
	"github.com/kilnproject/kiln/qemu"
)

func runCmd() *cobra.Command {
	var (
		archName, firmware, seedPath, netSpec, diskSize string
		memory, cpus                                    int
		forwards                                        []string
		kvm                                             bool
	)
	c := &cobra.Command{
		Use:   "run IMAGE",
		Short: "Boot an image in QEMU and show its serial console",
		Long: `Run boots an ISO, raw, qcow2, vmdk or vhd image under QEMU (KVM when --kvm is
given and /dev/kvm works, TCG otherwise) with the serial console on this
terminal. --seed attaches a NoCloud CIDATA disk built on the fly from a
directory (user-data, meta-data, network-config) or a machine config file.
Ctrl-C presses the VM's power button and waits for a clean shutdown; a second
Ctrl-C stops QEMU at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			image := args[0]
			if _, err := os.Stat(image); err != nil {
				return fmt.Errorf("image %s: %w", image, err)
			}
			if archName == "" {
				archName = guessArch(image)
			}
			ai, err := arch.Lookup(archName)
			if err != nil {
				return err
			}
			work, err := os.MkdirTemp("", "kiln-run-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(work)
			// QEMU runs in its own process group (so Ctrl-C reaches kiln, not
			// QEMU); a background group reading the terminal would be stopped
			// by SIGTTIN, so kiln forwards the keyboard through a pipe.
			pr, pw, err := os.Pipe()
			if err != nil {
				return err
			}
			defer pr.Close()
			go func() { io.Copy(pw, os.Stdin); pw.Close() }()
			m := &qemu.Machine{Arch: ai, Firmware: firmware, MemoryMiB: memory, CPUs: cpus, KVM: kvm, Net: netSpec,
				Console: os.Stdout, Stdin: pr, WorkDir: work}
			d := qemu.Drive{Path: image}
			if strings.HasSuffix(strings.ToLower(image), ".iso") {
				d.Media = "cdrom"
			} else {
				// Boot a copy-on-write overlay so the image itself stays as built,
				// optionally larger (first boot grows STATE to fill it).
				d, err = overlayDrive(image, work, diskSize)
				if err != nil {
					return err
				}
			}
			m.Drives = append(m.Drives, d)
			if seedPath != "" {
				iso := filepath.Join(work, "seed.iso")
				in, err := seedInput(seedPath)
				if err != nil {
					return err
				}
				if err := seed.WriteISO(iso, seed.NoCloud, in, builder.DefaultEpoch); err != nil {
					return err
				}
				m.Drives = append(m.Drives, qemu.Drive{Path: iso, Media: "cdrom"})
			}
			for _, f := range forwards {
				h, g, ok := strings.Cut(f, ":")
				hp, err1 := strconv.Atoi(h)
				gp, err2 := strconv.Atoi(g)
				if !ok || err1 != nil || err2 != nil {
					return fmt.Errorf("--forward %q: want HOSTPORT:GUESTPORT", f)
				}
				m.Forwards = append(m.Forwards, qemu.Forward{Host: hp, Guest: gp})
			}
			if strings.HasPrefix(netSpec, "socket:") {
				m.Net = "socket:" + socketSpec(strings.TrimPrefix(netSpec, "socket:"))
			}
			vm, err := m.Start(context.Background())
			if err != nil {
				return err
			}
			sig := make(chan os.Signal, 2)
			signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sig)
			presses := 0
			for {
				select {
				case <-vm.Exited():
					fmt.Fprintln(os.Stderr, "\nkiln: VM stopped")
					return nil
				case <-sig:
					presses++
					if presses > 1 {
						vm.Kill()
						continue
					}
					fmt.Fprintln(os.Stderr, "\nkiln: powering the VM off (Ctrl-C again to stop it at once)")
					if err := vm.Powerdown(); err != nil {
						vm.Kill()
					}
					go func() {
						if vm.Wait(60*time.Second) != nil {
							fmt.Fprintln(os.Stderr, "kiln: the VM did not power off within 60s; stopping it")
							vm.Kill()
						}
					}()
				}
			}
		},
	}
	f := c.Flags()
	f.StringVar(&archName, "arch", "", "architecture (default: from the image name, else amd64)")
	f.StringVar(&firmware, "firmware", "bios", "firmware: bios or uefi (arm64 is always uefi)")
	f.StringVar(&seedPath, "seed", "", "NoCloud seed: a directory with user-data/meta-data/network-config, or a machine config / cloud-config file")
	f.IntVar(&memory, "memory", 1024, "memory in MiB")
	f.IntVar(&cpus, "cpus", 2, "virtual CPUs")
	f.StringVar(&diskSize, "disk-size", "", "grow the (overlay) disk to this size, e.g. 4GiB")
	f.StringVar(&netSpec, "net", "user", "network: user, none, or socket:PORT (listen on 127.0.0.1:PORT) / socket:connect:PORT")
	f.StringSliceVar(&forwards, "forward", nil, "forward a host TCP port to the guest, HOST:GUEST (user network)")
	f.BoolVar(&kvm, "kvm", false, "use KVM when /dev/kvm is usable")
	return c
}

// socketSpec turns "PORT" or "connect:PORT" into QEMU's socket netdev options on loopback.
func socketSpec(s string) string {
	if p, ok := strings.CutPrefix(s, "connect:"); ok {
		return "connect=127.0.0.1:" + p
	}
	return "listen=127.0.0.1:" + s
}

func guessArch(image string) string {
	base := filepath.Base(image)
	if strings.Contains(base, "arm64") || strings.Contains(base, "aarch64") {
		return "arm64"
	}
	return "amd64"
}

func seedInput(path string) (seed.Input, error) {
	st, err := os.Stat(path)
	if err != nil {
		return seed.Input{}, fmt.Errorf("seed: %w", err)
	}
	if st.IsDir() {
		return seed.FromDir(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return seed.Input{}, err
	}
	return seed.Input{UserData: b}, nil
}

// overlayDrive makes a qcow2 overlay over image (never modified) in work.
func overlayDrive(image, work, size string) (qemu.Drive, error) {
	abs, err := filepath.Abs(image)
	if err != nil {
		return qemu.Drive{}, err
	}
	format := "raw"
	switch strings.ToLower(filepath.Ext(image)) {
	case ".qcow2":
		format = "qcow2"
	case ".vmdk":
		format = "vmdk"
	case ".vhd":
		format = "vpc"
	}
	ov := filepath.Join(work, "disk.qcow2")
	args := []string{"create", "-q", "-f", "qcow2", "-F", format, "-b", abs, ov}
	if size != "" {
		n, err := parseSize(size)
		if err != nil {
			return qemu.Drive{}, fmt.Errorf("--disk-size: %w", err)
		}
		args = append(args, strconv.FormatInt(n, 10))
	}
	if out, err := execOutput("qemu-img", args...); err != nil {
		return qemu.Drive{}, fmt.Errorf("qemu-img create overlay: %v: %s (install qemu-utils)", err, out)
	}
	return qemu.Drive{Path: ov, Format: "qcow2"}, nil
}
