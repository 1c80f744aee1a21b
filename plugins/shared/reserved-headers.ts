/**
 * Upstream request headers consumer-jwt never writes a claim or its assertion into: Kong's
 * identity headers, credentials, headers that steer the proxy (Host becomes Kong's upstream host
 * in set_headers) or frame the request.
 */
export const RESERVED_HEADER =
  /^(x-(consumer|credential|anonymous)-.*|x-authenticated-(groups|userid)|authorization|proxy-.*|cookie|host|content-(length|type|encoding)|transfer-encoding|connection|keep-alive|te|trailer|upgrade|via|forwarded|x-forwarded-.*|x-real-ip|x-kong-.*)$/i
