// Package tpwallet holds files of the repository root that the binary embeds.
package tpwallet

import _ "embed"

// OpenAPI is openapi.yaml, the API description served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
