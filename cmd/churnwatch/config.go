package main

import (
	"fmt"
	"io"

	"gopkg.in/yaml.v3"

	"churnwatch/pipeline/config"
)

// printConfig writes the effective configuration (defaults, file and
// environment) as YAML. Every secret that is set reads ********, every one
// that is not is empty: the output shows where a secret is missing without
// ever showing one.
func printConfig(cfg config.Config, w io.Writer) error {
	out, err := yaml.Marshal(cfg.Masked())
	if err != nil {
		return fmt.Errorf("print the configuration: %w", err)
	}
	fmt.Fprintf(w, "# churnwatch configuration in effect (defaults, then the file, then CHURNWATCH_* variables).\n"+
		"# Secrets are masked (%s when set); they come only from CHURNWATCH_* variables or their _FILE forms.\n", config.Masked)
	_, err = w.Write(out)
	return err
}
