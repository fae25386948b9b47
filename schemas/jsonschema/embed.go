// Package jsonschema holds the JSON Schema (draft 2020-12) documents that
// describe the message of every Kafka topic the pipeline reads or writes
// (SPEC section 2), for the upstream and ticketing teams that produce and
// consume them.
//
// The documents are embedded in the binary so that it can print or serve
// them. Each one is named after the default name of its topic, with a
// relative $id: cdr.voice.schema.json describes the topic cdr.voice. The Go
// decoders in package churnwatch/schemas remain the source of truth for what
// the pipeline accepts; the tests of that package check that both agree.
package jsonschema

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// suffix ends the file name of every schema document.
const suffix = ".schema.json"

//go:embed *.schema.json
var files embed.FS

// ErrUnknownTopic is returned (wrapped) by Schema for a topic that has no
// schema document.
var ErrUnknownTopic = errors.New("jsonschema: no schema for topic")

// Topics returns the default names of the topics that have a schema
// document, sorted, e.g. "billing.events", "cdr.voice", "churn.tasks".
func Topics() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		// The embedded root directory always exists.
		panic(err)
	}
	topics := make([]string, 0, len(entries))
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), suffix); ok && !e.IsDir() {
			topics = append(topics, name)
		}
	}
	sort.Strings(topics)
	return topics
}

// FileName returns the file name of the schema document of topic, e.g.
// "cdr.voice.schema.json" for "cdr.voice". It is also the document's $id.
func FileName(topic string) string {
	return topic + suffix
}

// Schema returns the JSON Schema document of topic, given by its default
// name without any configured prefix (e.g. "cdr.voice", "churn.tasks").
// The caller owns the returned bytes. An unknown topic yields an error that
// wraps ErrUnknownTopic.
func Schema(topic string) ([]byte, error) {
	if !fs.ValidPath(topic) || strings.Contains(topic, "/") {
		return nil, fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	}
	data, err := files.ReadFile(FileName(topic))
	if err != nil {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownTopic, topic, strings.Join(Topics(), ", "))
	}
	return data, nil
}
