package seal

// Info strings name what a sealed message is for (HPKE info), so a message
// sealed for one purpose never opens as another. The AAD each purpose binds
// is stated beside it.
const (
	// InfoCredential: a principal's credential the edge seals to policy's
	// key for rpc.policy.authenticate. AAD: empty.
	InfoCredential = "mcpgw/credential/v1"
	// InfoSecret: an upstream secret an operator's client seals to the
	// broker's key. AAD: SecretAAD(tenant, name).
	InfoSecret = "mcpgw/secret/v1"
	// InfoResolve: the material the broker seals to the adapter's ephemeral
	// key for one call. AAD: the request ID.
	InfoResolve = "mcpgw/broker-resolve/v1"
)

// SecretAAD is the AAD of an InfoSecret message: it binds the secret to the
// tenant and name it was sealed for.
func SecretAAD(tenant, name string) []byte { return []byte(tenant + "\x00" + name) }
