package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/kilnproject/kiln/initd/supervisor"
)

// One-shot services after the control plane is up.
const (
	SvcAddons   = "addons"   // kiln-bootstrap addons: metrics-server
	SvcValidate = "validate" // kiln-bootstrap validate: the cluster validation
)

// Validation is kiln-bootstrap validate's --result.
type Validation struct {
	Passed  bool    `json:"passed"`
	Checks  []Check `json:"checks"`
	Seconds float64 `json:"seconds"`
}

// Check is one validation check.
type Check struct {
	Name    string  `json:"name"`
	Passed  bool    `json:"passed"`
	Detail  string  `json:"detail"`
	Seconds float64 `json:"seconds"`
}

// ReadValidation reads a validation result.
func ReadValidation(path string) (*Validation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v Validation
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(v.Checks) == 0 {
		return nil, fmt.Errorf("%s: no checks", path)
	}
	return &v, nil
}

// Summary is the validation in one line: the checks that passed by name,
// the ones that failed with why.
func (v *Validation) Summary() string {
	var ok, bad []string
	for _, c := range v.Checks {
		if c.Passed {
			ok = append(ok, c.Name)
		} else {
			bad = append(bad, fmt.Sprintf("%s: %s", c.Name, c.Detail))
		}
	}
	if v.Passed {
		return fmt.Sprintf("passed: %s (%.1fs)", strings.Join(ok, ", "), v.Seconds)
	}
	return fmt.Sprintf("FAILED: %s; passed: %s (%.1fs)", strings.Join(bad, "; "), strings.Join(ok, ", "), v.Seconds)
}

// addonsAndValidation deploys the add-ons (metrics-server) and then runs
// the cluster validation, on a control-plane node once its node is Ready:
// both are kiln-bootstrap one-shots with the admin kubeconfig, which never
// leaves the node. The outcome is one console line.
func (o *Options) addonsAndValidation(ctx context.Context) {
	start := o.Uptime()
	if err := o.once(ctx, SvcAddons, "addons", "--kubeconfig", AdminConf, "--info", InfoFile); err != nil {
		o.Log("ERROR: cluster: add-ons: %v", err)
	}
	os.Remove(ValidationResult)
	// Each control-plane node validates in its own namespace: two nodes
	// validating at once would delete each other's pods.
	err := o.once(ctx, SvcValidate, "validate", "--kubeconfig", AdminConf, "--info", InfoFile, "--result", ValidationResult,
		"--namespace", "kiln-validation-"+o.Node.Name)
	v, rerr := ReadValidation(ValidationResult)
	now := o.Uptime()
	switch {
	case rerr != nil:
		o.Log("ERROR: cluster: validation did not finish: %v (%v)", err, rerr)
	case v.Passed:
		o.Log("cluster: validation %s, %.1fs after power-on (add-ons and validation %.1fs)", v.Summary(), now.Seconds(), (now - start).Seconds())
	default:
		o.Log("ERROR: cluster: validation %s (kiln logs %s)", v.Summary(), SvcValidate)
	}
}

// once runs kiln-bootstrap with args as the one-shot service name.
func (o *Options) once(ctx context.Context, name string, args ...string) error {
	if err := o.Super.Launch(ctx, supervisor.Service{
		Name: name, Path: bootstrapBin, Args: args, Env: serviceEnv, Deps: []string{SvcContainerd}, Once: true,
		StopTimeout: 10 * time.Second,
	}); err != nil {
		return err
	}
	if err := o.Super.WaitDone(ctx, name); err != nil {
		return fmt.Errorf("%v (kiln logs %s)", err, name)
	}
	return nil
}
