package bus

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"

	"github.com/nats-io/nats.go"
)

// Header names used on the bus. Routing headers (request ID, tenant, trace)
// are never trusted: the signed payload repeats what must be trusted.
const (
	HeaderMsgID     = nats.MsgIdHdr // Nats-Msg-Id
	HeaderSigner    = "Mcpgw-Signer"
	HeaderSignature = "Mcpgw-Sig"
	HeaderType      = "Mcpgw-Type"
	HeaderCaller    = "Mcpgw-Caller"
	HeaderTime      = "Mcpgw-Time"
	HeaderNonce     = "Mcpgw-Nonce"
	HeaderResponder = "Mcpgw-Responder"
	HeaderError     = "Mcpgw-Error"
	HeaderErrorMsg  = "Mcpgw-Error-Message"
	HeaderRequestID = "Mcpgw-Request-Id"
	HeaderTenant    = "Mcpgw-Tenant"
	HeaderTrace     = "Traceparent"
)

// Domain-separation labels of the three signed forms.
const (
	sigEvent   = "mcpgw/event/v1"
	sigRequest = "mcpgw/rpc-request/v1"
	sigReply   = "mcpgw/rpc-reply/v1"
)

func digest(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

func payloadDigest(payload []byte) string {
	h := sha256.Sum256(payload)
	return string(h[:])
}

// eventSigningInput is what an event signature covers: subject, message ID,
// type, signer and payload digest. The payload's EventMeta carries the time.
func eventSigningInput(subject, msgID, typ string, signer Service, payload []byte) []byte {
	return digest(sigEvent, subject, msgID, typ, string(signer), payloadDigest(payload))
}

func requestSigningInput(subject string, caller Service, unixNano, nonce string, payload []byte) []byte {
	return digest(sigRequest, subject, string(caller), unixNano, nonce, payloadDigest(payload))
}

func replySigningInput(subject string, responder Service, nonce, errCode string, payload []byte) []byte {
	return digest(sigReply, subject, string(responder), nonce, errCode, payloadDigest(payload))
}

func encodeSig(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func decodeSig(s string) []byte {
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}
