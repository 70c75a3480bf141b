package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/pkg/api"
)

func init() { register(newApplyCmd) }

type applyOptions struct {
	*clientFlags
	files     []string
	consumer  string
	recursive bool
}

func newApplyCmd() *cobra.Command {
	o := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update resource bundles from files",
		Long: `Create or update resource bundles from YAML or JSON files. A file holds one
bundle or several (multi-document YAML, a JSON array, or a list with items),
each either in the REST shape

  {name, consumer_name, metadata, manifests, manifest_configs, delete_option}

or as a ManifestWork (apiVersion work.open-cluster-management.io/v1, kind
ManifestWork, metadata.namespace = consumer, spec.workload.manifests,
spec.deleteOption, spec.manifestConfigs). A bundle is found by name and
consumer: a new one is created, an existing one updated at its current
version. A document {kind: Consumer, name, labels} creates a consumer (or
sets its labels); consumers are applied before bundles. Every file is checked before anything is applied; an invalid one is
reported with its document, line and field.`,
		Example: `  # Apply one bundle file
  baton apply -f examples/shared-ingress.yaml

  # Apply every .yaml, .yml and .json file of a directory to consumer dev
  baton apply -f examples/ --consumer dev

  # Create consumer dev, then its bundles
  printf 'kind: Consumer\nname: dev\n' | baton apply -f -
  baton apply -f examples/

  # Apply from standard input
  cat bundle.json | baton apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.clientFlags = addClientFlags(cmd)
	f := cmd.Flags()
	f.StringSliceVarP(&o.files, "filename", "f", nil, "file, directory or - for standard input (repeatable)")
	f.StringVarP(&o.consumer, "consumer", "c", "", "consumer for bundles that name none")
	f.BoolVarP(&o.recursive, "recursive", "R", false, "read directories recursively")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

func (o *applyOptions) run(cmd *cobra.Command) error {
	docs, err := o.read(cmd.InOrStdin())
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	var errs []error
	// Consumers first: the bundles of the same files may need them.
	sort.SliceStable(docs, func(i, j int) bool { return docs[i].Consumer != nil && docs[j].Consumer == nil })
	for _, d := range docs {
		if d.Consumer != nil {
			verb, err := applyConsumer(cmd.Context(), c, d.Consumer)
			if err != nil {
				var ue *client.UnreachableError
				if errors.As(err, &ue) {
					return err
				}
				errs = append(errs, fmt.Errorf("%s: consumer %s: %w", d.Source, d.Consumer.Name, err))
				continue
			}
			fmt.Fprintf(cmd.OutOrStdout(), "consumer/%s %s\n", d.Consumer.Name, verb)
			continue
		}
		verb, err := applyBundle(cmd.Context(), c, &d.Bundle)
		if err != nil {
			var ue *client.UnreachableError
			if errors.As(err, &ue) {
				return err
			}
			errs = append(errs, fmt.Errorf("%s: bundle %s: %w", d.Source, d.Bundle.Name, err))
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "bundle/%s %s\n", d.Bundle.Name, verb)
	}
	return errors.Join(errs...)
}

// read parses every file first, so that nothing is applied when one is invalid.
func (o *applyOptions) read(stdin io.Reader) ([]bundleDoc, error) {
	var docs []bundleDoc
	var errs []error
	for _, f := range o.files {
		files, err := expand(f, o.recursive)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, name := range files {
			data, err := readInput(name, stdin)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ds, err := parseBundles(name, data, o.consumer)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			docs = append(docs, ds...)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return docs, nil
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, nil
}

// expand turns a directory into its bundle files (sorted); a file or "-" stays.
func expand(name string, recursive bool) ([]string, error) {
	if name == "-" {
		return []string{name}, nil
	}
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if !st.IsDir() {
		return []string{name}, nil
	}
	var files []string
	err = filepath.WalkDir(name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != name && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", name)
	}
	sort.Strings(files)
	return files, nil
}

// applyConsumer creates a consumer or replaces the labels of an existing one.
func applyConsumer(ctx context.Context, c *client.Client, want *api.Consumer) (string, error) {
	cur, err := c.ConsumerByName(ctx, want.Name)
	if client.IsNotFound(err) {
		if _, err := c.CreateConsumer(ctx, *want); err != nil {
			return "", fmt.Errorf("create: %w", err)
		}
		return "created", nil
	}
	if err != nil {
		return "", fmt.Errorf("looking up: %w", err)
	}
	if len(cur.Labels) == len(want.Labels) && (len(want.Labels) == 0 || reflect.DeepEqual(cur.Labels, want.Labels)) {
		return "unchanged", nil
	}
	labels := want.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	if _, err := c.PatchConsumerLabels(ctx, cur.ID, labels); err != nil {
		return "", fmt.Errorf("update labels: %w", err)
	}
	return "configured", nil
}

// maxConflictRetries bounds re-reads when a bundle changes between read and update.
const maxConflictRetries = 3

// applyBundle creates b or updates the bundle of the same name and
// consumer; it returns "created", "configured" or "unchanged".
func applyBundle(ctx context.Context, c *client.Client, b *api.ResourceBundle) (string, error) {
	for attempt := 0; ; attempt++ {
		cur, err := c.BundleByName(ctx, b.ConsumerName, b.Name)
		if client.IsNotFound(err) {
			if _, err := c.CreateBundle(ctx, b); err != nil {
				return "", fmt.Errorf("create: %w", err)
			}
			return "created", nil
		}
		if err != nil {
			return "", fmt.Errorf("looking up: %w", err)
		}
		if sameSpec(cur, b) {
			return "unchanged", nil
		}
		upd := *b
		upd.Version = cur.Version
		_, err = c.UpdateBundle(ctx, cur.ID, &upd)
		if err == nil {
			return "configured", nil
		}
		if !client.IsConflict(err) || attempt >= maxConflictRetries {
			return "", fmt.Errorf("update: %w", err)
		}
	}
}

// sameSpec compares what apply would change: labels, annotations,
// manifests, manifest configs and delete option, as JSON values.
func sameSpec(cur, want *api.ResourceBundle) bool {
	norm := func(b *api.ResourceBundle) any {
		v := struct {
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
			Spec        api.BundleSpec    `json:"spec"`
		}{b.Metadata.Labels, b.Metadata.Annotations, b.Spec()}
		data, err := json.Marshal(v)
		if err != nil {
			return err.Error()
		}
		var out any
		_ = json.Unmarshal(data, &out)
		return out
	}
	return reflect.DeepEqual(norm(cur), norm(want))
}
