// Package deploy_test checks the deployment files in this directory against
// the code they deploy: deploy/kubernetes/ parsed with the Kubernetes API
// types, compose.yaml, and the container image built by scripts/image.sh
// running that Compose file on this machine's Docker Engine (skipped with
// a reason where there is none). The files are documented in docs/deploy.md.
package deploy_test
