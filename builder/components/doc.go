// Package components builds the pinned third-party binaries of the
// Kubernetes appliance (kubelet, etcd, containerd, runc, CNI plugins,
// CoreDNS, crictl, metrics-server) and our own pause, kiln-bootstrap and
// kiln-probe, statically, for one target architecture, from the Go modules
// under components/.
//
// Layout: components/<name>/ is one Go module per component. Its go.mod
// requires the pinned upstream release and names the main packages in
// `tool` directives; its go.sum is the digest pin of every input. Separate
// modules keep the dependency graphs of, say, Kubernetes and CoreDNS from
// clashing with each other or with kiln's own go.mod. Table says, for each
// binary, the module, main package, output name, version, -X stamps, cgo
// and build tags.
//
// API, for `kiln build`:
//
//	outs, err := components.Build(ctx, components.Options{
//		ComponentsDir: "components",                 // repo's components/
//		Arch:          "arm64",                      // amd64 | arm64
//		CacheDir:      filepath.Join(cache, "components"),
//		Names:         []string{"kubelet", "etcd@v3.7.0", "cni-plugins"}, // nil = all
//		Log:           log.Printf,                   // optional
//	})
//	for _, o := range outs { // in Table order
//		// o.Name "kubelet", o.Path (file in CacheDir, read-only, do not
//		// move), o.Component "kubernetes", o.Module "k8s.io/kubernetes",
//		// o.Version "v1.37.2", o.Sum "h1:..." (go.sum digest; "" for pause)
//	}
//
// A name is a binary name (kubelet, etcdctl, bridge) or, when no binary has
// that name, a component name (kubernetes, cni-plugins: all its binaries);
// "name@version" also checks the pinned version. An unknown name or a
// version other than the pinned one is an error naming it.
//
// Builds use go build -trimpath -buildvcs=false, -ldflags "-s -w -buildid=
// -X ...", CGO_ENABLED=0 (runc: cgo, static-pie, libseccomp, the Debian
// cross gcc for a foreign arch), GOFLAGS=-mod=readonly, GOTOOLCHAIN=local.
// Binaries of one component with the same flags are built by one go build
// call. Outputs are cached under CacheDir/<key>/<name>, key = sha256 of the
// component directory's files (go.mod, go.sum, our sources), package,
// flags, tags, GOARCH, the C compiler and static libraries (cgo), and the Go
// version (read from GOROOT/VERSION). When every requested output is cached
// the go command is not run at all, so a cached build works offline.
// The same inputs give byte-identical binaries (TestReproducibleCGO).
//
// Binaries that need a different flag set are separate go build calls even
// within one module: containerd's shim is built with upstream's no_grpc tag
// (ttrpc only, smaller), containerd and ctr without it; etcd and etcdctl
// are two modules, each stamped with its own digest. The compile work they
// share still comes from the Go build cache. A cgo binary (runc) consults
// the C compiler even when cached (gcc -print-file-name, for the key), so
// the cross gcc must be installed to use a cached arm64 runc.
package components
