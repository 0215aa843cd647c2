package chproc

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"text/template"

	"github.com/mcpgw/mcpgw/libs/secret"
)

// serverTemplate is the server configuration. Only the native TCP port is
// configured: without http_port, https_port, tcp_port_secure and
// interserver_http_port the server opens no other listener. query_log and
// the other system logs are off.
var serverTemplate = template.Must(template.New("config.xml").Funcs(template.FuncMap{"x": xmlText}).Parse(`<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{{x .Dir}}/log/server.log</log>
        <errorlog>{{x .Dir}}/log/error.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.Port}}</tcp_port>
    <path>{{x .Dir}}/data/</path>
    <tmp_path>{{x .Dir}}/tmp/</tmp_path>
    <user_files_path>{{x .Dir}}/data/user_files/</user_files_path>
    <format_schema_path>{{x .Dir}}/data/format_schemas/</format_schema_path>
    <users_config>{{x .Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>1024</max_connections>
    <max_concurrent_queries>100</max_concurrent_queries>
    <keep_alive_timeout>3</keep_alive_timeout>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
`))

// usersTemplate holds the single user, reachable from 127.0.0.1 only, with
// its password as a SHA-256 hash.
var usersTemplate = template.Must(template.New("users.xml").Funcs(template.FuncMap{"x": xmlText}).Parse(`<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
        </default>
    </profiles>
    <users>
        <default>
            <password_sha256_hex>{{x .PasswordSHA256}}</password_sha256_hex>
            <networks>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`))

type templateData struct {
	Dir            string
	Port           int
	PasswordSHA256 string
}

// writeConfig writes config.xml and users.xml into dir, each 0600, replacing
// earlier versions atomically.
func writeConfig(dir string, port int, password secret.Value) error {
	data := templateData{Dir: dir, Port: port, PasswordSHA256: passwordHash(password)}
	for _, tmpl := range []*template.Template{serverTemplate, usersTemplate} {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, data); err != nil {
			return fmt.Errorf("render %s: %w", tmpl.Name(), err)
		}
		if err := secret.WriteFile(filepath.Join(dir, tmpl.Name()), secret.New(buf.Bytes())); err != nil {
			return err
		}
	}
	return nil
}

func xmlText(s string) (string, error) {
	var b bytes.Buffer
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}
