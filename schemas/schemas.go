// Package schemas holds the versioned descriptions of redraft's output
// datasets. Each file is named <dataset>.v<N>.json and never changes once
// released: a change to a dataset's columns is a new version and a new file.
// Every shard carries its schema version in its Parquet metadata
// (redraft.schema).
package schemas

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed *.json
var files embed.FS

// Description is the JSON description of one dataset version.
type Description struct {
	Dataset     string `json:"dataset"`
	Version     string `json:"version"`
	Description string `json:"description"`
	Columns     []struct {
		Name        string `json:"name"`
		Type        string `json:"type"`
		Nullable    bool   `json:"nullable"`
		Description string `json:"description"`
	} `json:"columns"`
}

// Load returns the description of a version such as "rl/1".
func Load(version string) (*Description, error) {
	ds, n, ok := strings.Cut(version, "/")
	if !ok {
		return nil, fmt.Errorf("schema version %q is not <dataset>/<n>", version)
	}
	b, err := files.ReadFile(ds + ".v" + n + ".json")
	if err != nil {
		return nil, fmt.Errorf("no description for schema %s: %w", version, err)
	}
	var d Description
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("schema %s: %w", version, err)
	}
	if d.Version != version {
		return nil, fmt.Errorf("schema file for %s says version %s", version, d.Version)
	}
	return &d, nil
}
