package images

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kilnproject/kiln/builder/debian"
	"github.com/kilnproject/kiln/internal/testdeb"
)

// TestKubeProxyRealMirror builds the kube-proxy image from the real Debian
// archive (the host's apt sources or KILN_DEBIAN_MIRROR) for amd64 and
// arm64, unpacks it with umoci and, for the host's architecture, runs
// iptables, ip6tables-restore, nft and ipset inside the unpacked root (a
// chroot): the layer must hold every library and extension they load.
func TestKubeProxyRealMirror(t *testing.T) {
	if testing.Short() || os.Getenv("KILN_OFFLINE") == "1" {
		t.Skip("needs the Debian mirror (skipped by -short or KILN_OFFLINE=1)")
	}
	suites, err := debian.HostSuites()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ref string
	for _, r := range testRefs() {
		if strings.Contains(r, "/kube-proxy:") {
			ref = r
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			src := &debian.Source{Mirrors: suites, CacheDir: filepath.Join(testdeb.CacheDir, "debian"), Log: t.Logf}
			o := Options{
				Arch:     arch,
				Refs:     []string{ref},
				Binaries: testBinaries(t, arch),
				Debian:   src,
				Epoch:    testEpoch,
				Dir:      filepath.Join(t.TempDir(), "images"),
			}
			res, err := Build(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range res[0].Packages {
				names = append(names, p.Name+" "+p.Version)
			}
			t.Logf("kube-proxy %s: %d bytes (manifest, config, uncompressed layers); Debian packages: %s", arch, res[0].Size, strings.Join(names, ", "))

			needTool(t, "umoci", "umoci")
			bundle := filepath.Join(t.TempDir(), "bundle")
			if out, err := exec.Command("umoci", "--log", "error", "unpack", "--rootless", "--image", o.Dir+":"+ref, bundle).CombinedOutput(); err != nil {
				t.Fatalf("umoci unpack: %v\n%s", err, out)
			}
			rootfs := filepath.Join(bundle, "rootfs")
			for _, p := range []string{"usr/sbin/xtables-nft-multi", "usr/sbin/nft", "usr/sbin/ipset"} {
				f, err := elf.Open(filepath.Join(rootfs, p))
				if err != nil {
					t.Fatalf("/%s: %v", p, err)
				}
				if f.Machine != elfMachines[arch] {
					t.Errorf("/%s is %s, want %s", p, f.Machine, arch)
				}
				f.Close()
			}
			for _, p := range []string{"usr/share", "usr/lib/" + tripletOf(arch) + "/gconv"} {
				if _, err := os.Stat(filepath.Join(rootfs, p)); err == nil {
					t.Errorf("/%s is in the image", p)
				}
			}
			if arch != runtime.GOARCH {
				return
			}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"/usr/sbin/iptables", "--version"}, "(nf_tables)"},
				{[]string{"/usr/sbin/ip6tables-restore", "--version"}, "(nf_tables)"},
				{[]string{"/usr/sbin/iptables-save", "--version"}, "(nf_tables)"},
				{[]string{"/usr/sbin/nft", "--version"}, "nftables v"},
				{[]string{"/usr/sbin/ipset", "version"}, "ipset v"},
				// Parsing a rule loads the xtables extensions (libxt_*.so)
				// from the layer; --help does not touch the kernel.
				{[]string{"/usr/sbin/iptables", "-m", "conntrack", "--help"}, "conntrack match options"},
				{[]string{"/usr/sbin/iptables", "-m", "comment", "--help"}, "comment match options"},
			} {
				out, err := inRoot(rootfs, []string{"PATH=/usr/sbin:/usr/bin"}, tc.args...)
				if err != nil || !strings.Contains(out, tc.want) {
					t.Errorf("%s in the image: %v\n%s", strings.Join(tc.args, " "), err, out)
				}
			}
		})
	}
}

// inRoot runs args chrooted into rootfs with environment env (through a
// user namespace when not root).
func inRoot(rootfs string, env []string, args ...string) (string, error) {
	cmd := exec.Command("chroot", append([]string{rootfs}, args...)...)
	if os.Geteuid() != 0 {
		cmd = exec.Command("unshare", append([]string{"-r", "chroot", rootfs}, args...)...)
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}
