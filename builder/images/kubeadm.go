package images

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// KubeadmList runs `kubeadm config images list` for k8sVersion (e.g.
// "v1.37.2") with the host-arch kubeadm at kubeadmBin and returns the image
// references it prints, in its order. kubeadm is the only source of the
// references: which images exist, their registry and their tags.
//
// The JSON output (-o json, an output.kubeadm.k8s.io Images object) is
// parsed rather than the text one, so a warning on stdout cannot be taken
// for an image. Every reference must be a fully qualified tag.
func KubeadmList(ctx context.Context, kubeadmBin, k8sVersion string) ([]string, error) {
	if k8sVersion == "" {
		return nil, fmt.Errorf("images: kubeadm images list: empty Kubernetes version")
	}
	args := []string{"config", "images", "list", "--kubernetes-version", k8sVersion, "-o", "json"}
	cmd := exec.CommandContext(ctx, kubeadmBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	what := kubeadmBin + " " + strings.Join(args, " ")
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("images: %s: %w: %s", what, err, firstLines(stderr.String(), 5))
	}
	refs, err := parseKubeadmImages(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("images: %s: %w", what, err)
	}
	return refs, nil
}

// kubeadmImages is kubeadm's output.kubeadm.k8s.io Images object.
type kubeadmImages struct {
	Kind       string   `json:"kind"`
	APIVersion string   `json:"apiVersion"`
	Images     []string `json:"images"`
}

func parseKubeadmImages(out []byte) ([]string, error) {
	var v kubeadmImages
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("output is not an Images JSON object: %w (output: %q)", err, firstLines(string(out), 3))
	}
	if v.Kind != "Images" || !strings.HasPrefix(v.APIVersion, "output.kubeadm.k8s.io/") {
		return nil, fmt.Errorf("output has kind %q apiVersion %q, want kind Images of output.kubeadm.k8s.io", v.Kind, v.APIVersion)
	}
	if len(v.Images) == 0 {
		return nil, fmt.Errorf("output lists no images")
	}
	seen := map[string]bool{}
	for i, ref := range v.Images {
		if _, err := parseTag(ref); err != nil {
			return nil, fmt.Errorf("images[%d]: %w", i, err)
		}
		if seen[ref] {
			return nil, fmt.Errorf("images[%d]: %q listed twice", i, ref)
		}
		seen[ref] = true
	}
	return v.Images, nil
}

// parseTag accepts a fully qualified tag reference (registry, repository
// and tag all written out), as kubeadm prints them.
func parseTag(ref string) (name.Tag, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	if !strings.HasPrefix(ref, tag.RegistryStr()+"/") {
		return name.Tag{}, fmt.Errorf("image reference %q: no registry host", ref)
	}
	return tag, nil
}

// repoBase is the last element of a reference's repository ("coredns" for
// ".../coredns/coredns:v1.14.6"): the key of the recipe table.
func repoBase(tag name.Tag) string { return path.Base(tag.RepositoryStr()) }

// RefParts splits a fully qualified tag reference into its repository
// (registry included), the repository's last element (what recipes and
// addons are named by) and the tag.
func RefParts(ref string) (repository, base, tag string, err error) {
	t, err := parseTag(ref)
	if err != nil {
		return "", "", "", err
	}
	return t.Repository.Name(), repoBase(t), t.TagStr(), nil
}

// MetricsServerVersion is the metrics-server release the addon image is
// tagged with (the pinned component version).
const MetricsServerVersion = "v0.9.0"

// ProbeVersion is the version of our kiln-probe (components/probe), and
// ProbeRef the reference of its image: "localhost/" is the usual name of a
// locally built image, so no registry is named and nothing can be pulled
// for it; containerd and the CRI keep the name as written.
const (
	ProbeVersion = "v0.1.0"
	ProbeRef     = "localhost/kiln-probe:" + ProbeVersion
)

// Addons returns the references of the images kiln ships beyond kubeadm's
// own list. metrics-server's is derived from that list so that it shares
// its registry prefix: it goes where its upstream publishes it,
// "<prefix>/metrics-server/metrics-server:<version>", with prefix the
// repository kubeadm's kube-apiserver lives in. kiln-probe is ours and
// published nowhere: ProbeRef.
func Addons(kubeadmRefs []string) ([]string, error) {
	for _, ref := range kubeadmRefs {
		tag, err := parseTag(ref)
		if err != nil {
			return nil, fmt.Errorf("images: addons: %w", err)
		}
		if repoBase(tag) == "kube-apiserver" {
			prefix := path.Dir(strings.TrimSuffix(ref, ":"+tag.TagStr()))
			return []string{prefix + "/metrics-server/metrics-server:" + MetricsServerVersion, ProbeRef}, nil
		}
	}
	return nil, fmt.Errorf("images: addons: kubeadm's list has no kube-apiserver image to take the registry prefix from")
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}
