package cluster

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// KubeletArgs is the kubelet's command line as kubeadm's systemd drop-in
// would give it: the kubeconfigs and config file kubeadm wrote, then the
// flags from kubeadm-flags.env (KUBELET_KUBEADM_ARGS="...").
func KubeletArgs(flagsEnv string) ([]string, error) {
	args := []string{
		"--bootstrap-kubeconfig=" + BootstrapKubeconf,
		"--kubeconfig=" + KubeletConf,
		"--config=" + KubeletConfig,
	}
	data, err := os.ReadFile(flagsEnv)
	if errors.Is(err, os.ErrNotExist) {
		return args, nil
	}
	if err != nil {
		return nil, err
	}
	extra, err := parseFlagsEnv(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagsEnv, err)
	}
	return append(args, extra...), nil
}

// parseFlagsEnv reads the one variable kubeadm writes: KUBELET_KUBEADM_ARGS,
// a Go-quoted string of space-separated flags (values have no spaces).
func parseFlagsEnv(s string) ([]string, error) {
	const prefix = "KUBELET_KUBEADM_ARGS="
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, prefix) {
			return nil, fmt.Errorf("unexpected line %q (want %s...)", line, prefix)
		}
		v := strings.TrimPrefix(line, prefix)
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		return strings.Fields(v), nil
	}
	return nil, nil
}
