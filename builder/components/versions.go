package components

// VersionProbe says how to make a binary print its version and what the
// output must contain, so tests can check a build (in the cache or inside an
// image) is the pinned release with its version stamps.
type VersionProbe struct {
	Args []string // command-line arguments
	Want []string // substrings of the combined output
	// ExitNonZero tolerates a failing exit status after the version is
	// printed. (CNI plugins print their "about" line without CNI_COMMAND and
	// exit 0: TestBuildAll checks it.)
	ExitNonZero bool
}

// VersionProbes maps a binary name to its probe.
var VersionProbes = map[string]VersionProbe{
	"kubelet":                 {Args: []string{"--version"}, Want: []string{"Kubernetes v1.37.2"}},
	"kubectl":                 {Args: []string{"version", "--client"}, Want: []string{"Client Version: v1.37.2"}},
	"kubeadm":                 {Args: []string{"version", "-o", "short"}, Want: []string{"v1.37.2"}},
	"kube-apiserver":          {Args: []string{"--version"}, Want: []string{"Kubernetes v1.37.2"}},
	"kube-controller-manager": {Args: []string{"--version"}, Want: []string{"Kubernetes v1.37.2"}},
	"kube-scheduler":          {Args: []string{"--version"}, Want: []string{"Kubernetes v1.37.2"}},
	"kube-proxy":              {Args: []string{"--version"}, Want: []string{"Kubernetes v1.37.2"}},
	"etcd":                    {Args: []string{"--version"}, Want: []string{"etcd Version: 3.7.0", "Git SHA: h1:"}},
	"etcdctl":                 {Args: []string{"version"}, Want: []string{"etcdctl version: 3.7.0"}},
	"containerd":              {Args: []string{"--version"}, Want: []string{"containerd github.com/containerd/containerd/v2 v2.4.2 h1:"}},
	"containerd-shim-runc-v2": {Args: []string{"-v"}, Want: []string{"Version:  v2.4.2"}},
	"runc":                    {Args: []string{"--version"}, Want: []string{"runc version 1.5.3", "libseccomp: 2."}},
	"bridge":                  {Want: []string{"CNI bridge plugin v1.10.0"}},
	"host-local":              {Want: []string{"CNI host-local plugin v1.10.0"}},
	"loopback":                {Want: []string{"CNI loopback plugin v1.10.0"}},
	"portmap":                 {Want: []string{"CNI portmap plugin v1.10.0"}},
	"coredns":                 {Args: []string{"-version"}, Want: []string{"CoreDNS-1.14.6"}},
	"crictl":                  {Args: []string{"--version"}, Want: []string{"crictl version 1.37.0"}},
	"metrics-server":          {Args: []string{"--version"}, Want: []string{"v0.9.0"}},
	"ctr":                     {Args: []string{"--version"}, Want: []string{"ctr github.com/containerd/containerd/v2 v2.4.2"}},
	"kiln-bootstrap":          {Args: []string{"version"}, Want: []string{"kiln-bootstrap v0.1.0"}},
	"pause":                   {Args: []string{"-v"}, Want: []string{"pause v1.0.0"}},
	"kiln-probe":              {Args: []string{"version"}, Want: []string{"kiln-probe v0.1.0"}},
}

// AliasesOf returns the other command names binary answers to.
func AliasesOf(binary string) []string {
	for _, c := range Table {
		for _, b := range c.Binaries {
			if b.Name == binary {
				return b.Aliases
			}
		}
	}
	return nil
}
