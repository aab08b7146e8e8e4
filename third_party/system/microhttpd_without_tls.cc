// GnuTLS, absent: what Debian's static libmicrohttpd.a refers to for HTTPS,
// which ntpfleet never asks of it (the controller's /metrics is plain HTTP:
// controller/metrics.cc starts its daemon without MHD_USE_TLS). Linked only
// into fully static binaries that use libmicrohttpd (static_binary.bzl),
// instead of the real libgnutls.a: that one needs libp11-kit, which Debian
// ships only as a shared library (and which loads PKCS#11 modules with dlopen),
// and would add GnuTLS, Nettle, GMP, libidn2 and libunistring for nothing.
//
// libmicrohttpd initialises GnuTLS when it is loaded (gnutls_global_init from
// its constructor), so that succeeds; everything that would set up a TLS
// session or credentials fails with GNUTLS_E_UNIMPLEMENTED_FEATURE, so an HTTPS
// daemon fails to start instead of running without TLS.
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>

extern "C" {

namespace {
constexpr int kAbsent = GNUTLS_E_UNIMPLEMENTED_FEATURE;
}  // namespace

gnutls_alloc_function gnutls_malloc = malloc;

int gnutls_global_init(void) { return 0; }
void gnutls_global_deinit(void) {}
const char* gnutls_strerror(int /*error*/) {
  return "TLS is not available: this static build of libmicrohttpd has no "
         "GnuTLS";
}

int gnutls_init(gnutls_session_t* /*session*/, unsigned int /*flags*/) {
  return kAbsent;
}
void gnutls_deinit(gnutls_session_t /*session*/) {}
int gnutls_certificate_allocate_credentials(
    gnutls_certificate_credentials_t* /*res*/) {
  return kAbsent;
}
void gnutls_certificate_free_credentials(
    gnutls_certificate_credentials_t /*sc*/) {}
int gnutls_psk_allocate_server_credentials(
    gnutls_psk_server_credentials_t* /*sc*/) {
  return kAbsent;
}
void gnutls_psk_free_server_credentials(
    gnutls_psk_server_credentials_t /*sc*/) {}
void gnutls_psk_set_server_credentials_function(
    gnutls_psk_server_credentials_t /*cred*/,
    gnutls_psk_server_credentials_function* /*func*/) {}
int gnutls_dh_params_init(gnutls_dh_params_t* /*dh_params*/) { return kAbsent; }
void gnutls_dh_params_deinit(gnutls_dh_params_t /*dh_params*/) {}
int gnutls_dh_params_import_pkcs3(gnutls_dh_params_t /*params*/,
                                  const gnutls_datum_t* /*pkcs3_params*/,
                                  gnutls_x509_crt_fmt_t /*format*/) {
  return kAbsent;
}
int gnutls_priority_init(gnutls_priority_t* /*priority_cache*/,
                         const char* /*priorities*/, const char** /*err_pos*/) {
  return kAbsent;
}
void gnutls_priority_deinit(gnutls_priority_t /*priority_cache*/) {}
int gnutls_priority_set(gnutls_session_t /*session*/,
                        gnutls_priority_t /*priority*/) {
  return kAbsent;
}
void gnutls_certificate_set_dh_params(gnutls_certificate_credentials_t /*res*/,
                                      gnutls_dh_params_t /*dh_params*/) {}
int gnutls_certificate_set_x509_key_mem(
    gnutls_certificate_credentials_t /*res*/, const gnutls_datum_t* /*cert*/,
    const gnutls_datum_t* /*key*/, gnutls_x509_crt_fmt_t /*type*/) {
  return kAbsent;
}
int gnutls_certificate_set_x509_key_mem2(
    gnutls_certificate_credentials_t /*res*/, const gnutls_datum_t* /*cert*/,
    const gnutls_datum_t* /*key*/, gnutls_x509_crt_fmt_t /*type*/,
    const char* /*pass*/, unsigned int /*flags*/) {
  return kAbsent;
}
int gnutls_certificate_set_x509_trust_mem(
    gnutls_certificate_credentials_t /*res*/, const gnutls_datum_t* /*ca*/,
    gnutls_x509_crt_fmt_t /*type*/) {
  return kAbsent;
}
void gnutls_certificate_set_retrieve_function2(
    gnutls_certificate_credentials_t /*cred*/,
    gnutls_certificate_retrieve_function2* /*func*/) {}
void gnutls_certificate_set_retrieve_function3(
    gnutls_certificate_credentials_t /*cred*/,
    gnutls_certificate_retrieve_function3* /*func*/) {}
void gnutls_certificate_server_set_request(
    gnutls_session_t /*session*/, gnutls_certificate_request_t /*req*/) {}
int gnutls_credentials_set(gnutls_session_t /*session*/,
                           gnutls_credentials_type_t /*type*/, void* /*cred*/) {
  return kAbsent;
}
int gnutls_alpn_set_protocols(gnutls_session_t /*session*/,
                              const gnutls_datum_t* /*protocols*/,
                              unsigned /*protocols_size*/, unsigned /*flags*/) {
  return kAbsent;
}
void gnutls_transport_set_int2(gnutls_session_t /*session*/, int /*r*/,
                               int /*s*/) {}
void gnutls_session_set_ptr(gnutls_session_t /*session*/, void* /*ptr*/) {}
void* gnutls_session_get_ptr(gnutls_session_t /*session*/) { return nullptr; }
int gnutls_handshake(gnutls_session_t /*session*/) { return kAbsent; }
int gnutls_bye(gnutls_session_t /*session*/, gnutls_close_request_t /*how*/) {
  return kAbsent;
}
ssize_t gnutls_record_recv(gnutls_session_t /*session*/, void* /*data*/,
                           size_t /*data_size*/) {
  return kAbsent;
}
ssize_t gnutls_record_send(gnutls_session_t /*session*/, const void* /*data*/,
                           size_t /*data_size*/) {
  return kAbsent;
}
size_t gnutls_record_check_pending(gnutls_session_t /*session*/) { return 0; }
int gnutls_record_get_direction(gnutls_session_t /*session*/) { return 0; }
gnutls_cipher_algorithm_t gnutls_cipher_get(gnutls_session_t /*session*/) {
  return GNUTLS_CIPHER_UNKNOWN;
}
gnutls_protocol_t gnutls_protocol_get_version(gnutls_session_t /*session*/) {
  return GNUTLS_VERSION_UNKNOWN;
}

}  // extern "C"
