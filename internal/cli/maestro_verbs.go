package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// Maestro's CLI names its commands noun first (consumer list, resourcebundle
// get …). These aliases rewrite such a command line into baton's verb and
// run it, so runbooks written for Maestro's CLI work; every flag after the
// verb is passed on as is.

func init() {
	register(newConsumerAliasCmd)
	register(newBundleAliasCmd)
}

// alias is one noun-first verb and how it becomes a baton command line.
type alias struct {
	verb, short string
	rewrite     func(args []string) (baton []string, stdin string, err error)
}

func newConsumerAliasCmd() *cobra.Command {
	return aliasCmd("consumer", []string{"consumers"}, "Maestro-style consumer commands (aliases of get, apply and delete)",
		`  baton consumer list
  baton consumer get mgmt-1 -o yaml
  baton consumer create mgmt-1 --labels region=eastus
  baton consumer update mgmt-1 --labels region=westus
  baton consumer delete mgmt-1`,
		[]alias{
			{"list", "List consumers (baton get consumers)", func(a []string) ([]string, string, error) {
				return append([]string{"get", "consumers"}, a...), "", nil
			}},
			{"get", "Show a consumer (baton get consumer NAME)", named("get", "consumer")},
			{"create", "Create a consumer with labels (baton apply of a Consumer document)", consumerDoc},
			{"update", "Replace a consumer's labels (baton apply of a Consumer document)", consumerDoc},
			{"delete", "Delete a consumer (baton delete consumer NAME)", named("delete", "consumer")},
		})
}

func newBundleAliasCmd() *cobra.Command {
	return aliasCmd("resourcebundle", []string{"resourcebundles", "rb"}, "Maestro-style resource bundle commands (aliases of get, apply, delete and describe)",
		`  baton resourcebundle list --consumer mgmt-1
  baton resourcebundle get shared-ingress -o json
  baton resourcebundle apply -f bundle.yaml
  baton resourcebundle status shared-ingress --consumer mgmt-1
  baton resourcebundle delete shared-ingress --consumer mgmt-1`,
		[]alias{
			{"list", "List resource bundles (baton get bundles)", func(a []string) ([]string, string, error) {
				return append([]string{"get", "bundles"}, a...), "", nil
			}},
			{"get", "Show a resource bundle (baton get bundle NAME)", named("get", "bundle")},
			{"apply", "Create or update bundles from files (baton apply -f)", func(a []string) ([]string, string, error) {
				return append([]string{"apply"}, a...), "", nil
			}},
			{"status", "Show a bundle's status in detail (baton describe bundle NAME)", named("describe", "bundle")},
			{"delete", "Delete a resource bundle (baton delete bundle NAME)", named("delete", "bundle")},
		})
}

func aliasCmd(noun string, aliases []string, short, example string, verbs []alias) *cobra.Command {
	cmd := &cobra.Command{Use: noun + " VERB", Aliases: aliases, Short: short, Example: example}
	for _, v := range verbs {
		cmd.AddCommand(&cobra.Command{
			Use:                v.verb,
			Short:              v.short,
			DisableFlagParsing: true, // the flags belong to the baton verb
			RunE: func(c *cobra.Command, args []string) error {
				if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
					return c.Help()
				}
				line, stdin, err := v.rewrite(args)
				if err != nil {
					return fmt.Errorf("%s %s: %w", noun, v.verb, err)
				}
				root := NewRoot()
				root.SetArgs(line)
				root.SetOut(c.OutOrStdout())
				root.SetErr(c.ErrOrStderr())
				if stdin != "" {
					root.SetIn(strings.NewReader(stdin))
				} else {
					root.SetIn(c.InOrStdin())
				}
				return root.ExecuteContext(c.Context())
			},
		})
	}
	return cmd
}

// named rewrites "NAME flags…" into "verb kind NAME flags…".
func named(verb, kind string) func([]string) ([]string, string, error) {
	return func(a []string) ([]string, string, error) {
		name, rest, err := splitName(a)
		if err != nil {
			return nil, "", err
		}
		return append([]string{verb, kind, name}, rest...), "", nil
	}
}

// consumerDoc turns "NAME [--labels k=v,…] flags…" (or --name NAME) into
// an apply of a Consumer document on standard input.
func consumerDoc(a []string) ([]string, string, error) {
	var name, labels string
	var rest []string
	for i := 0; i < len(a); i++ {
		arg := a[i]
		key, val, hasVal := strings.Cut(arg, "=")
		switch key {
		case "--labels", "-l", "--name":
			if !hasVal {
				if i+1 >= len(a) {
					return nil, "", fmt.Errorf("%s needs a value", key)
				}
				i++
				val = a[i]
			}
			if key == "--name" {
				name = val
			} else {
				labels = val
			}
			continue
		}
		if takesValue(arg) && i+1 < len(a) {
			rest = append(rest, arg, a[i+1])
			i++
			continue
		}
		if name == "" && !strings.HasPrefix(arg, "-") {
			name = arg
			continue
		}
		rest = append(rest, arg)
	}
	if name == "" {
		return nil, "", fmt.Errorf("the consumer NAME is required")
	}
	doc := map[string]any{"kind": "Consumer", "name": name}
	l := map[string]string{}
	for _, kv := range strings.Split(labels, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, "", fmt.Errorf("label %q: want key=value", kv)
		}
		l[k] = v
	}
	doc["labels"] = l
	raw, err := yaml.Marshal(doc)
	if err != nil {
		return nil, "", err
	}
	return append([]string{"apply", "-f", "-"}, rest...), string(raw), nil
}

// splitName takes the first argument that is not a flag as the name. A
// flag's separate value is kept with its flag.
func splitName(a []string) (string, []string, error) {
	for i, arg := range a {
		if !strings.HasPrefix(arg, "-") && (i == 0 || !takesValue(a[i-1])) {
			return arg, append(append([]string{}, a[:i]...), a[i+1:]...), nil
		}
	}
	return "", nil, fmt.Errorf("a NAME is required")
}

// takesValue reports whether flag (without "=value") is followed by its value.
func takesValue(flag string) bool {
	if strings.Contains(flag, "=") {
		return false
	}
	switch flag {
	case "-c", "--consumer", "-o", "--output", "-s", "--server", "--token", "--config", "-l", "--selector":
		return true
	}
	return false
}
