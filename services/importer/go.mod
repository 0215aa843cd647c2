module github.com/mcpgw/mcpgw/services/importer

go 1.26

require (
	github.com/getkin/kin-openapi v0.153.0
	go.yaml.in/yaml/v4 v4.0.0
)

require (
	github.com/go-openapi/jsonpointer v0.22.5 // indirect
	github.com/go-openapi/swag/jsonname v0.25.5 // indirect
	github.com/mcpgw/mcpgw/libs v0.0.0
	github.com/mcpgw/mcpgw/tools v0.0.0
	github.com/nats-io/nats.go v1.55.0
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 // indirect
	golang.org/x/text v0.14.0 // indirect
	google.golang.org/protobuf v1.36.12
)

replace github.com/mcpgw/mcpgw/libs => ../../libs

replace github.com/mcpgw/mcpgw/deploy => ../../deploy

replace github.com/mcpgw/mcpgw/tools => ../../tools
