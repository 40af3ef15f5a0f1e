// Package crd embeds the CustomResourceDefinitions generated from api/, so the ferry binary can
// install the API it serves.
package crd

import (
	"embed"
	"fmt"
	"io/fs"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

//go:embed bases/*.yaml
var bases embed.FS

// All returns Ferry's CustomResourceDefinitions, ready to apply.
func All() ([]*unstructured.Unstructured, error) {
	files, err := fs.Glob(bases, "bases/*.yaml")
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := bases.ReadFile(f)
		if err != nil {
			return nil, err
		}
		obj := map[string]any{}
		if err := yaml.Unmarshal(data, &obj); err != nil {
			return nil, fmt.Errorf("crd %s: %w", f, err)
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out, nil
}
