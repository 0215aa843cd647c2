module github.com/mcpgw/mcpgw/services/credential-broker

go 1.26.0

require github.com/mcpgw/mcpgw/libs v0.0.0

replace github.com/mcpgw/mcpgw/libs => ../../libs
