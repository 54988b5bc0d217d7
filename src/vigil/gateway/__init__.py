"""`vigil gateway`: an ICAP service (RFC 3507) that web proxies call for every response and
upload; images, videos and archives are fingerprinted through the engine facade."""
