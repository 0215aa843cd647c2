module github.com/mcpgw/mcpgw/tools

go 1.26

require gopkg.in/yaml.v3 v3.0.1

require github.com/mcpgw/mcpgw/libs v0.0.0

replace github.com/mcpgw/mcpgw/libs => ../libs
