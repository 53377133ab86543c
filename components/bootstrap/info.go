package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// defaultInfoFile is /etc/kiln/cluster.json, written by kiln build
// (initd/cluster.InfoFile; this module does not import kiln's).
const defaultInfoFile = "/etc/kiln/cluster.json"

// clusterInfo is the part of cluster.json this program reads: the image
// references baked into the node. They are taken from kubeadm and the
// profile at build time, so no reference is spelled in this code.
type clusterInfo struct {
	path   string
	Images []string `json:"images"`
}

func readClusterInfo(path string) (*clusterInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	i := &clusterInfo{path: path}
	if err := json.Unmarshal(data, i); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(i.Images) == 0 {
		return nil, fmt.Errorf("%s: images: empty", path)
	}
	return i, nil
}

// image returns the baked reference whose repository's last path element
// is name ("kiln-probe", "metrics-server"), as initd's Info.Image does.
func (i *clusterInfo) image(name string) (string, error) {
	for _, ref := range i.Images {
		if repoBase(ref) == name {
			return ref, nil
		}
	}
	return "", fmt.Errorf("%s: images: no %s image among %d", i.path, name, len(i.Images))
}

// repoBase is the last element of a reference's repository, without the
// tag or digest: "host:5000/a/b:v1" -> "b".
func repoBase(ref string) string {
	repo, _, _ := strings.Cut(ref, "@")
	if at := strings.LastIndex(repo, ":"); at > strings.LastIndex(repo, "/") {
		repo = repo[:at]
	}
	return repo[strings.LastIndex(repo, "/")+1:]
}

// newClient builds a clientset from a kubeconfig file; the rest.Config
// is returned for the clients that are not in the typed set.
func newClient(kubeconfig string) (*rest.Config, kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", kubeconfig, err)
	}
	rc.Timeout = time.Minute // one request; an emulated API server is slow
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", kubeconfig, err)
	}
	return rc, cs, nil
}

// writeJSONFile writes v to path through a temporary file in the same
// directory and a rename: a reader never sees half a result.
func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
