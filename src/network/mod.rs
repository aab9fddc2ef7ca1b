//! wharf's own network layer (bridges, veth, IPAM, nftables, DNS). Not built yet: issue 5.
