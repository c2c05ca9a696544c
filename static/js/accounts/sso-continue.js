// Goes on to the identity provider at once (the link works without script too).
const link = document.querySelector("[data-sso-continue]");
if (link) window.location.assign(link.href);
