#!/usr/bin/env ruby
# An independent SAML service provider for TruSec's tests: Debian's
# ruby-saml (OneLogin's library; Nokogiri and Ruby's OpenSSL), used as an
# SP's assertion consumer service would use it.
#
# Reads one JSON object on stdin:
#   saml_response   the SAMLResponse form field (base64)
#   idp_cert        the IdP's signing certificate (PEM), or
#   idp_metadata    the IdP's metadata XML as the SP fetched it: every
#                   signing certificate it lists is trusted (ruby-saml's
#                   IdpMetadataParser, idp_cert_multi)
#   issuer          the IdP entity id the SP expects
#   audience        the SP's entity id
#   acs             the SP's assertion consumer service URL
#   request_id      the AuthnRequest ID it must answer (optional)
#   sp_private_key  the SP's decryption key (PEM; optional)
#   now             the time to validate at, RFC 3339 (the tests' clock)
#
# Prints {"name_id": …, "name_id_format": …, "encrypted": whether the
# assertion came encrypted, "attributes": {name: [values]}}
# and exits 0 when ruby-saml accepts the response; prints its errors on
# stderr and exits 1 when it refuses it.

require 'json'
require 'time'
require 'onelogin/ruby-saml'

input = JSON.parse($stdin.read)

# ruby-saml checks NotBefore/NotOnOrAfter against Time.now; the tests run
# the IdP on a fake clock, so this SP lives at the same time.
if input['now']
  frozen = Time.parse(input['now'])
  Time.singleton_class.send(:define_method, :now) { frozen }
end

settings = OneLogin::RubySaml::Settings.new
if input['idp_metadata']
  OneLogin::RubySaml::IdpMetadataParser.new.parse(input['idp_metadata'], settings: settings)
else
  settings.idp_cert = input.fetch('idp_cert')
end
settings.idp_entity_id = input.fetch('issuer')
settings.sp_entity_id = input.fetch('audience')
settings.assertion_consumer_service_url = input.fetch('acs')
settings.private_key = input['sp_private_key'] if input['sp_private_key']
settings.security[:want_assertions_signed] = true

options = { settings: settings }
options[:matches_request_id] = input['request_id'] if input['request_id']
begin
  # Decrypting happens here, before validation.
  response = OneLogin::RubySaml::Response.new(input.fetch('saml_response'), options)
  valid = response.is_valid?(true)
rescue StandardError => e
  warn "ruby-saml raised #{e.class}: #{e.message}"
  exit 1
end
unless valid
  response.errors.each { |err| warn err }
  exit 1
end

attributes = {}
response.attributes.each { |name, values| attributes[name] = Array(values) }
puts JSON.generate(
  'name_id' => response.name_id,
  'name_id_format' => response.name_id_format,
  'encrypted' => !response.decrypted_document.nil?,
  'attributes' => attributes
)
