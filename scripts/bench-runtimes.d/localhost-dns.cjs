// Preloaded (NODE_OPTIONS=--require) into ministack's ws-message function
// only, for the "workaround" runs of scripts/bench-runtimes: ministack gives
// WebSocket events requestContext.domainName "<apiId>.execute-api.<MINISTACK_HOST>",
// which nothing resolves on a plain Linux host (getaddrinfo ENOTFOUND). This
// answers 127.0.0.1 for names under .localhost, as browsers and
// systemd-resolved do. The function's code is unchanged.
const dns = require('dns');
const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  if (typeof host === 'string' && host.endsWith('.localhost')) {
    if (typeof options === 'function') { callback = options; options = {}; }
    if (typeof options === 'number') options = { family: options };
    if (options && options.all) return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
    return process.nextTick(callback, null, '127.0.0.1', 4);
  }
  return lookup.apply(this, arguments);
};
