package components

// Component is one Go module under the components directory: a go.mod that
// requires one pinned upstream release (plus go.sum, the digest of every
// input) and names the main packages to build in `tool` directives.
type Component struct {
	Name     string // directory under ComponentsDir
	Version  string // the pinned upstream release (for pause: our own version)
	Binaries []Binary
}

// Binary is one executable built from a component.
type Binary struct {
	Name    string // output file name
	Module  string // module providing Package (its go.mod require pins Version)
	Package string // main package
	// Stamps are -X importpath.name=value link flags. In a value, {sum} is
	// replaced by the go.sum digest (h1:...) of Module: the module proxy
	// serves no commit hash, and this digest names the exact source tree.
	Stamps []string
	// StampSumOf names another required module whose digest {sum} stands
	// for (our own modules have none: kiln-bootstrap stamps Kubernetes').
	StampSumOf string
	Tags       []string // build tags
	CGO        bool     // cgo with a static C toolchain (static-pie); off otherwise
	// CLibs are static C libraries (lib<name>.a) linked in; their files are
	// part of the cache key. Only with CGO.
	CLibs []string
	// Aliases are other command names this binary answers to when invoked
	// under them (the rootfs gets symlinks), so one copy of shared code ships.
	Aliases []string
}

// k8sStamps are the version variables hack/lib/version.sh sets in both
// packages; without them kubeadm reports v0.0.0 and picks wrong image tags.
// buildDate is the release tag's commit time, not the clock.
func k8sStamps(gitVersion, major, minor, buildDate string) []string {
	var out []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		out = append(out,
			pkg+".gitVersion="+gitVersion,
			pkg+".gitMajor="+major,
			pkg+".gitMinor="+minor,
			pkg+".gitCommit={sum}",
			pkg+".gitTreeState=clean",
			pkg+".buildDate="+buildDate,
		)
	}
	return out
}

var kubeStamps = k8sStamps("v1.37.2", "1", "37", "2026-10-27T12:01:04Z")

func kube(name string) Binary {
	return Binary{Name: name, Module: "k8s.io/kubernetes", Package: "k8s.io/kubernetes/cmd/" + name, Stamps: kubeStamps}
}

var containerdStamps = []string{
	"github.com/containerd/containerd/v2/version.Version=v2.4.2",
	"github.com/containerd/containerd/v2/version.Revision={sum}",
	"github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2",
}

func cni(dir, name string) Binary {
	return Binary{
		Name:    name,
		Module:  "github.com/containernetworking/plugins",
		Package: "github.com/containernetworking/plugins/plugins/" + dir + "/" + name,
		Stamps:  []string{"github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v1.10.0"},
	}
}

// Table is every component kiln builds, with the flags their own release
// builds use (Makefiles read for the facts: tags, -X variables).
var Table = []Component{
	{Name: "kubernetes", Version: "v1.37.2", Binaries: []Binary{
		kube("kubelet"), kube("kubectl"), kube("kubeadm"), kube("kube-apiserver"),
		kube("kube-controller-manager"), kube("kube-scheduler"), kube("kube-proxy"),
	}},
	{Name: "etcd", Version: "v3.7.0", Binaries: []Binary{
		{Name: "etcd", Module: "go.etcd.io/etcd/server/v3", Package: "go.etcd.io/etcd/server/v3",
			Stamps: []string{"go.etcd.io/etcd/api/v3/version.GitSHA={sum}"}},
		{Name: "etcdctl", Module: "go.etcd.io/etcd/etcdctl/v3", Package: "go.etcd.io/etcd/etcdctl/v3",
			Stamps: []string{"go.etcd.io/etcd/api/v3/version.GitSHA={sum}"}},
	}},
	{Name: "containerd", Version: "v2.4.2", Binaries: []Binary{
		{Name: "containerd", Module: "github.com/containerd/containerd/v2",
			Package: "github.com/containerd/containerd/v2/cmd/containerd", Stamps: containerdStamps,
			Tags: []string{"urfave_cli_no_docs", "osusergo", "netgo", "static_build"}},
		// The shim carries no gRPC server (ttrpc only), as upstream builds it.
		{Name: "containerd-shim-runc-v2", Module: "github.com/containerd/containerd/v2",
			Package: "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2", Stamps: containerdStamps,
			Tags: []string{"urfave_cli_no_docs", "osusergo", "netgo", "static_build", "no_grpc"}},
		// ctr imports the baked OCI layout into containerd at boot (no registry).
		{Name: "ctr", Module: "github.com/containerd/containerd/v2",
			Package: "github.com/containerd/containerd/v2/cmd/ctr", Stamps: containerdStamps,
			Tags: []string{"urfave_cli_no_docs", "osusergo", "netgo", "static_build"}},
	}},
	// runc embeds its version from the VERSION file (go:embed), so main.version
	// cannot be set with -X; the commit slot carries the module digest. The
	// libpathrs tag of upstream's Makefile is left out: it links a Rust library
	// Debian bookworm does not ship, and runc falls back to its Go pathrs-lite.
	{Name: "runc", Version: "v1.5.3", Binaries: []Binary{
		{Name: "runc", Module: "github.com/opencontainers/runc", Package: "github.com/opencontainers/runc",
			Stamps: []string{"main.gitCommit={sum}"},
			Tags:   []string{"seccomp", "urfave_cli_no_docs", "netgo", "osusergo"},
			CGO:    true, CLibs: []string{"seccomp"}},
	}},
	{Name: "cni-plugins", Version: "v1.10.0", Binaries: []Binary{
		cni("main", "bridge"), cni("ipam", "host-local"), cni("main", "loopback"), cni("meta", "portmap"),
	}},
	// CoreDNS's version is a constant in coremain; only the commit is stamped.
	{Name: "coredns", Version: "v1.14.6", Binaries: []Binary{
		{Name: "coredns", Module: "github.com/coredns/coredns", Package: "github.com/coredns/coredns",
			Stamps: []string{"github.com/coredns/coredns/coremain.GitCommit={sum}"},
			Tags:   []string{"grpcnotrace"}},
	}},
	// cri-tools' Makefile stamps the tag without its "v".
	{Name: "cri-tools", Version: "v1.37.0", Binaries: []Binary{
		{Name: "crictl", Module: "sigs.k8s.io/cri-tools", Package: "sigs.k8s.io/cri-tools/cmd/crictl",
			Stamps: []string{"sigs.k8s.io/cri-tools/pkg/version.Version=1.37.0"}},
	}},
	{Name: "metrics-server", Version: "v0.9.0", Binaries: []Binary{
		{Name: "metrics-server", Module: "sigs.k8s.io/metrics-server", Package: "sigs.k8s.io/metrics-server/cmd/metrics-server",
			Stamps: []string{
				"k8s.io/client-go/pkg/version.gitVersion=v0.9.0",
				"k8s.io/client-go/pkg/version.gitCommit={sum}",
				"k8s.io/client-go/pkg/version.buildDate=2026-07-13T09:28:19Z",
			}},
	}},
	// kiln-bootstrap is our own code (components/bootstrap): kubeadm's
	// packages run in-process to form the cluster. It carries Kubernetes'
	// version stamps, as kubeadm picks image tags and checks skew by them.
	{Name: "bootstrap", Version: "v0.1.0", Binaries: []Binary{
		{Name: "kiln-bootstrap", Module: BootstrapModule, Package: BootstrapModule,
			Stamps: append([]string{"main.version=v0.1.0"}, kubeStamps...), StampSumOf: "k8s.io/kubernetes",
			Aliases: []string{"kubeadm"}},
	}},
	// pause is our own code (components/pause), not an upstream module.
	{Name: "pause", Version: "v1.0.0", Binaries: []Binary{
		{Name: "pause", Module: PauseModule, Package: PauseModule, Stamps: []string{"main.version=v1.0.0"}},
	}},
	// kiln-probe is our own code (components/probe): the one program of the
	// kiln-probe image, which the cluster checks run in pods.
	{Name: "probe", Version: "v0.1.0", Binaries: []Binary{
		{Name: "kiln-probe", Module: ProbeModule, Package: ProbeModule, Stamps: []string{"main.version=v0.1.0"}},
	}},
}

// Our own modules under components/.
const (
	PauseModule     = "github.com/kilnproject/kiln/components/pause"     // the pod sandbox process
	BootstrapModule = "github.com/kilnproject/kiln/components/bootstrap" // kiln-bootstrap
	ProbeModule     = "github.com/kilnproject/kiln/components/probe"     // kiln-probe, the cluster checks' image
)
