// Package deploy holds no production code: its tests check the deployment
// files at the repository root (docker-compose.yml, deploy/, scripts/lib.sh)
// so a broken or insecure edit fails `make test` even on machines without
// Docker. The compose file is loaded with compose-go, the library `docker
// compose` itself uses.
package deploy
