package machineconfig

import (
	"bytes"
	"fmt"

	"github.com/kilnproject/kiln/initd/strictyaml"
	"go.yaml.in/yaml/v3"
)

// Parse decodes and validates a machine config. source names it in
// errors ("machine config", "worker.yaml"). Decoding goes on past errors:
// the returned config holds every field that could be read (nil only when
// the YAML itself is unreadable), and the error (a *strictyaml.Errors)
// lists every problem. Defaults are filled in. A secretsFile is not read
// here: see LoadSecretsFile.
func Parse(source string, data []byte) (*MachineConfig, error) {
	var mc MachineConfig
	lines, err := strictyaml.Decode(source, data, &mc)
	errs, ok := err.(*strictyaml.Errors)
	if !ok {
		errs = &strictyaml.Errors{Source: source}
	}
	if errs.Syntax {
		return nil, errs
	}
	checkHeader(errs, lines, mc.APIVersion, mc.Kind, KindMachineConfig)
	mc.Spec.defaults()
	mc.Spec.validate(errs, lines)
	return &mc, errs.Err()
}

func checkHeader(errs *strictyaml.Errors, lines strictyaml.Lines, apiVersion, kind, want string) {
	switch apiVersion {
	case APIVersion:
	case "":
		errs.Add(lines, "apiVersion", "missing (want %s)", APIVersion)
	default:
		errs.Add(lines, "apiVersion", "%q is not supported (want %s)", apiVersion, APIVersion)
	}
	if kind != want {
		errs.Add(lines, "kind", "%q: want %s", kind, want)
	}
}

func (s *Spec) defaults() {
	n := &s.Cluster.Networking
	if n.PodSubnet == "" {
		n.PodSubnet = DefaultPodSubnet
	}
	if n.ServiceSubnet == "" {
		n.ServiceSubnet = DefaultServiceSubnet
	}
	if n.DNSDomain == "" {
		n.DNSDomain = DefaultDNSDomain
	}
	if s.NodeAPI.Port == 0 {
		s.NodeAPI.Port = DefaultNodeAPIPort
	}
}

// LoadSecretsFile reads spec.secretsFile with read (os.ReadFile on a node)
// into spec.secrets and checks it for the role. A config with inline
// secrets is left alone.
func (mc *MachineConfig) LoadSecretsFile(read func(string) ([]byte, error)) error {
	path := mc.Spec.SecretsFile
	if path == "" || mc.Spec.Secrets != nil {
		return nil
	}
	data, err := read(path)
	if err != nil {
		return fmt.Errorf("machine config: spec.secretsFile: %v", err)
	}
	s, err := ParseSecrets(path, data, mc.Spec.Role)
	if s != nil {
		mc.Spec.Secrets = s
	}
	return err
}

// ParseSecrets reads a file holding what spec.secrets holds and checks it
// for role.
func ParseSecrets(source string, data []byte, role string) (*Secrets, error) {
	var s Secrets
	lines, err := strictyaml.Decode(source, data, &s)
	errs, ok := err.(*strictyaml.Errors)
	if !ok {
		errs = &strictyaml.Errors{Source: source}
	}
	if errs.Syntax {
		return nil, errs
	}
	validateSecrets(errs, lines, "", &s, role)
	return &s, errs.Err()
}

// ParseBundle reads secrets.yaml: every secret must be there, the
// node-API CA key included.
func ParseBundle(source string, data []byte) (*SecretsBundle, error) {
	var b SecretsBundle
	lines, err := strictyaml.Decode(source, data, &b)
	errs, ok := err.(*strictyaml.Errors)
	if !ok {
		errs = &strictyaml.Errors{Source: source}
	}
	if errs.Syntax {
		return nil, errs
	}
	checkHeader(errs, lines, b.APIVersion, b.Kind, KindSecrets)
	validateSecrets(errs, lines, "secrets", &b.Secrets, "")
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &b, nil
}

// Marshal renders a document as YAML (2-space indent, fields in
// declaration order, PEM blocks as literal blocks): the same value gives
// the same bytes.
func Marshal(header string, v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
