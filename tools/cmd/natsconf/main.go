// Command natsconf prints the NATS server configuration of a deployment:
// one user per service with the permissions of the bus registry, and the
// admin user; password hashes come from the environment at server start.
package main

import (
	"flag"
	"fmt"

	"github.com/mcpgw/mcpgw/libs/natsserver"
)

func main() {
	listen := flag.String("listen", "0.0.0.0:4222", "client listen address")
	store := flag.String("store-dir", "/data", "JetStream store directory")
	flag.Parse()
	fmt.Print(natsserver.ConfigFile(*listen, *store))
}
