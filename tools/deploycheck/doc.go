// Package deploycheck holds the checks of the deployment descriptions that
// cannot run here (compose.yaml and the Dockerfiles need a container
// engine): its tests parse them and check every service, flag, port, secret
// and file they name against the code.
package deploycheck
