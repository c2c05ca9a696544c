// The IdP's redirect back, in the popup: the fragment (code and state, or an error)
// goes to the opening page over a same-origin BroadcastChannel (it works whatever
// the pages' Cross-Origin-Opener-Policy did to window.opener); the fragment never
// reaches the portal's servers. The URL is cleared before anything else runs.
const fragment = location.hash.slice(1);
history.replaceState(null, "", location.pathname);
const channel = new BroadcastChannel("dualkey-identity");
channel.postMessage(fragment);
channel.close();
window.close();
