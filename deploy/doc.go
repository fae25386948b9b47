// Package deploy holds no code: its test checks the container image
// (Dockerfile), the local stack (compose.yaml) and the Kubernetes manifests
// (k8s/) against the configuration and the HTTP routes of the code.
package deploy
