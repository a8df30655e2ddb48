// Submits the SAML response form at once; without JavaScript the visible
// Continue button does the same.
document.querySelector("form.autopost").submit();
