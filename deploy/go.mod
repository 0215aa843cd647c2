module github.com/mcpgw/mcpgw/deploy

go 1.26
