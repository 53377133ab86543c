package images

import "sort"

// recipe says how one image is made from kiln's binaries. Paths, entrypoint,
// user and working directory follow the upstream image wherever a manifest
// kubeadm writes depends on them.
type recipe struct {
	files      []binFile // component binaries laid into the image's last layer
	debian     []string  // Debian packages for a userspace layer (with their dependencies)
	links      []link    // symlinks added to the Debian layer
	entrypoint []string
	cmd        []string // default arguments (Cmd), which a pod's args replace
	user       string
	workdir    string
	ports      []string // ExposedPorts, documentation only
}

// binFile places a component binary.
type binFile struct {
	binary string // key of Options.Binaries
	path   string // in the image, no leading "/"
	// netBindService gives the file the cap_net_bind_service capability, as
	// upstream's setcap does, so a non-root user can bind ports below 1024.
	netBindService bool
}

type link struct{ path, target string }

// pathEnv is the search path of every image: kubeadm's static pod
// manifests call kube-apiserver, etcd ... by name.
const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// User IDs of the upstream images' non-root users.
const (
	uidNonroot = 65532 // distroless "nonroot" (coredns)
	uidNobody  = 65534 // metrics-server's and kiln-probe's USER
	uidPause   = 65535 // pause's USER
)

// recipes is keyed by the image repository's last element.
var recipes = map[string]recipe{
	// The control plane images: the binary in /usr/local/bin, called by
	// name from the static pod manifests. Upstream's entrypoint is
	// /go-runner, which those manifests override; ours is the binary.
	"kube-apiserver": {
		files:      []binFile{{binary: "kube-apiserver", path: "usr/local/bin/kube-apiserver", netBindService: true}},
		entrypoint: []string{"/usr/local/bin/kube-apiserver"},
	},
	"kube-controller-manager": {
		files:      []binFile{{binary: "kube-controller-manager", path: "usr/local/bin/kube-controller-manager"}},
		entrypoint: []string{"/usr/local/bin/kube-controller-manager"},
	},
	"kube-scheduler": {
		files:      []binFile{{binary: "kube-scheduler", path: "usr/local/bin/kube-scheduler"}},
		entrypoint: []string{"/usr/local/bin/kube-scheduler"},
	},
	// kube-proxy's DaemonSet runs /usr/local/bin/kube-proxy; the proxier
	// execs iptables(-save/-restore), ip6tables*, nft (nftables mode) and
	// ipset (IPVS mode). Conntrack entries are cleared over netlink, so
	// the conntrack tool is not needed.
	"kube-proxy": {
		files:  []binFile{{binary: "kube-proxy", path: "usr/local/bin/kube-proxy"}},
		debian: []string{"iptables", "nftables", "ipset"},
		// The alternatives Debian's postinst would choose: the nf_tables
		// backend (the kernel side kiln ships), through xtables-nft-multi.
		links: []link{
			{"usr/sbin/iptables", "iptables-nft"},
			{"usr/sbin/iptables-save", "iptables-nft-save"},
			{"usr/sbin/iptables-restore", "iptables-nft-restore"},
			{"usr/sbin/ip6tables", "ip6tables-nft"},
			{"usr/sbin/ip6tables-save", "ip6tables-nft-save"},
			{"usr/sbin/ip6tables-restore", "ip6tables-nft-restore"},
		},
		entrypoint: []string{"/usr/local/bin/kube-proxy"},
	},
	// kubeadm's etcd manifest runs "etcd ..."; etcdctl sits next to it as
	// upstream's image has it, for `kubectl exec ... etcdctl`.
	"etcd": {
		files: []binFile{
			{binary: "etcd", path: "usr/local/bin/etcd"},
			{binary: "etcdctl", path: "usr/local/bin/etcdctl"},
		},
		entrypoint: []string{"/usr/local/bin/etcd"},
		workdir:    "/",
		ports:      []string{"2379/tcp", "2380/tcp", "4001/tcp", "7001/tcp"},
	},
	// kubeadm's CoreDNS Deployment passes args only: the entrypoint must be
	// /coredns. It runs as nonroot with NET_BIND_SERVICE added and
	// allowPrivilegeEscalation off, so the file capability is what lets it
	// bind :53, as in upstream's image.
	"coredns": {
		files:      []binFile{{binary: "coredns", path: "coredns", netBindService: true}},
		entrypoint: []string{"/coredns"},
		user:       "65532:65532",
		workdir:    "/",
		ports:      []string{"53/tcp", "53/udp"},
	},
	// The sandbox image: the CRI runs it with no command of its own.
	"pause": {
		files:      []binFile{{binary: "pause", path: "pause"}},
		entrypoint: []string{"/pause"},
		user:       "65535:65535",
	},
	// Addon: metrics-server's upstream image is /metrics-server as USER 65534.
	"metrics-server": {
		files:      []binFile{{binary: "metrics-server", path: "metrics-server"}},
		entrypoint: []string{"/metrics-server"},
		user:       "65534",
	},
	// Ours: the cluster checks' program (components/probe). Without args a
	// pod serves HTTP on 8080; args "lookup NAME" or "get URL" run a check.
	// A non-root user with its group spelled out: the CRI takes the group
	// of a bare numeric user from /etc/passwd, or 0 if it finds none.
	"kiln-probe": {
		files:      []binFile{{binary: "kiln-probe", path: "kiln-probe"}},
		entrypoint: []string{"/kiln-probe"},
		cmd:        []string{"serve"},
		user:       "65534:65534",
		ports:      []string{"8080/tcp"},
	},
}

// RecipeNames lists the images Build knows how to make (repository basenames).
func RecipeNames() []string {
	var out []string
	for k := range recipes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Binaries lists the component binaries the images of refs need, sorted.
// An image without a recipe is an error naming it.
func Binaries(refs []string) ([]string, error) {
	set := map[string]bool{}
	for _, ref := range refs {
		r, _, err := recipeFor(ref)
		if err != nil {
			return nil, err
		}
		for _, f := range r.files {
			set[f.binary] = true
		}
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}
