// Reading an ntpfleet identity out of a PEM certificate's subjectAltNames with
// OpenSSL 3 (see identity.h for the scheme).
#include "common/identity.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ntpfleet {
namespace {

constexpr absl::string_view kNodePrefix = "ntpfleet:node:";
constexpr absl::string_view kUserPrefix = "ntpfleet:user:";
constexpr absl::string_view kRolePrefix = "ntpfleet:role:";
constexpr absl::string_view kController = "ntpfleet:controller";

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};

std::string AsString(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// An iPAddress SAN (4 or 16 bytes, network order) as text; nullopt otherwise.
std::optional<std::string> IpText(const ASN1_OCTET_STRING* ip) {
  char text[INET6_ADDRSTRLEN] = {};
  const unsigned char* bytes = ASN1_STRING_get0_data(ip);
  const int length = ASN1_STRING_length(ip);
  int family;
  if (length == 4) {
    family = AF_INET;
  } else if (length == 16) {
    family = AF_INET6;
  } else {
    return std::nullopt;
  }
  if (inet_ntop(family, bytes, text, sizeof(text)) == nullptr) {
    return std::nullopt;
  }
  return std::string(text);
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none";
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "none";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "operator") return Role::kOperator;
  if (name == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(absl::StrFormat(
      "`%s` is not a role: use viewer, operator or admin", name));
}

std::string Identity::ToString() const {
  switch (kind) {
    case Kind::kNode:
      return absl::StrCat("node:", name);
    case Kind::kUser:
      return absl::StrCat("user:", name, " (", RoleName(role), ")");
    case Kind::kController:
      return absl::StrCat("controller:", name);
  }
  return absl::StrCat("?:", name);
}

absl::StatusOr<Identity> IdentityFromPem(absl::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::InternalError("out of memory");
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        "the certificate is not a PEM X.509 certificate");
  }
  std::unique_ptr<GENERAL_NAMES, NamesFree> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));

  std::vector<std::string> nodes, users, roles, hosts;
  int controllers = 0;
  const int count = names == nullptr ? 0 : sk_GENERAL_NAME_num(names.get());
  for (int i = 0; i < count; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_URI) {
      const std::string uri = AsString(name->d.uniformResourceIdentifier);
      if (absl::StartsWith(uri, kNodePrefix)) {
        nodes.push_back(uri.substr(kNodePrefix.size()));
      } else if (absl::StartsWith(uri, kUserPrefix)) {
        users.push_back(uri.substr(kUserPrefix.size()));
      } else if (absl::StartsWith(uri, kRolePrefix)) {
        roles.push_back(uri.substr(kRolePrefix.size()));
      } else if (uri == kController) {
        ++controllers;
      } else if (absl::StartsWith(uri, "ntpfleet:")) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "the certificate has an unknown ntpfleet identity URI `%s`: "
            "issue it again with `ntpfleetctl certs issue`",
            absl::CHexEscape(uri)));
      }
    } else if (name->type == GEN_DNS) {
      hosts.push_back(AsString(name->d.dNSName));
    } else if (name->type == GEN_IPADD) {
      std::optional<std::string> ip = IpText(name->d.iPAddress);
      if (ip.has_value()) hosts.push_back(*ip);
    }
  }

  const int kinds = (nodes.empty() ? 0 : 1) + (users.empty() ? 0 : 1) +
                    (controllers == 0 ? 0 : 1);
  if (kinds == 0) {
    return absl::InvalidArgumentError(
        "the certificate carries no ntpfleet identity (no URI:ntpfleet:node:, "
        "URI:ntpfleet:user: or URI:ntpfleet:controller subjectAltName): make "
        "it with `ntpfleetctl certs issue`");
  }
  if (kinds > 1 || nodes.size() > 1 || users.size() > 1 || controllers > 1) {
    return absl::InvalidArgumentError(
        "the certificate carries more than one ntpfleet identity (node, user "
        "or controller): one certificate must name exactly one");
  }

  Identity id;
  if (!nodes.empty()) {
    if (!roles.empty()) {
      return absl::InvalidArgumentError(
          "a node certificate must not carry a role (URI:ntpfleet:role:): "
          "roles are for users");
    }
    if (!IsValidNodeName(nodes[0])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("the certificate's node name `%s` is not a valid "
                          "node name (DNS-like labels of [A-Za-z0-9_-])",
                          absl::CHexEscape(nodes[0])));
    }
    id.kind = Identity::Kind::kNode;
    id.name = nodes[0];
    return id;
  }
  if (!users.empty()) {
    if (!IsValidNodeName(users[0])) {
      return absl::InvalidArgumentError(
          absl::StrFormat("the certificate's user name `%s` is not a valid "
                          "name (DNS-like labels of [A-Za-z0-9_-])",
                          absl::CHexEscape(users[0])));
    }
    if (roles.size() != 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "a user certificate must carry exactly one role "
          "(URI:ntpfleet:role:viewer|operator|admin), this one has %d: issue "
          "it again with `ntpfleetctl certs issue --user NAME --role ROLE`",
          roles.size()));
    }
    absl::StatusOr<Role> role = ParseRole(roles[0]);
    if (!role.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the certificate's role: ", role.status().message()));
    }
    id.kind = Identity::Kind::kUser;
    id.name = users[0];
    id.role = *role;
    return id;
  }
  // The controller.
  if (!roles.empty()) {
    return absl::InvalidArgumentError(
        "a controller certificate must not carry a role (URI:ntpfleet:role:): "
        "roles are for users");
  }
  if (hosts.empty()) {
    return absl::InvalidArgumentError(
        "the controller certificate names no host (no DNS: or IP: "
        "subjectAltName): issue it with `ntpfleetctl certs issue --controller "
        "HOST[,HOST...]`");
  }
  id.kind = Identity::Kind::kController;
  id.name = hosts[0];
  return id;
}

}  // namespace ntpfleet
