//! Merchant roles and what each may do, and the shape of staff invite codes. Pure: the
//! HTTP extractors ask [`MerchantRole::allows`], storage keeps [`MerchantRole::as_str`].
//!
//! | permission | owner | manager | cashier |
//! | --- | --- | --- | --- |
//! | orders list | all | all | today (CST) only |
//! | refunds | yes | yes | no |
//! | payment codes (create, list, disable, QR) | yes | yes | no |
//! | takings per day (stats) | yes | yes | no |
//! | settlements | yes | no | no |
//! | staff and invites | yes | no | no |

use serde::{Deserialize, Serialize};

/// A user's role at one merchant. The owner is `merchants.owner_user_id`; managers and
/// cashiers are rows of `merchant_staff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MerchantRole {
    Cashier,
    Manager,
    Owner,
}

/// Something a merchant route does, as the role table grants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// The orders list (a cashier's is restricted to today).
    Orders,
    Refund,
    /// Create, list, disable and print payment codes.
    Codes,
    Stats,
    Settlements,
    /// Invites, the staff list, role changes and removals.
    Staff,
}

/// Which orders a member's orders list may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdersScope {
    All,
    /// Only orders created on the current China Standard Time day, whatever was asked.
    Today,
}

impl MerchantRole {
    pub const ALL: [MerchantRole; 3] = [
        MerchantRole::Owner,
        MerchantRole::Manager,
        MerchantRole::Cashier,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MerchantRole::Owner => "owner",
            MerchantRole::Manager => "manager",
            MerchantRole::Cashier => "cashier",
        }
    }

    pub fn parse(s: &str) -> Option<MerchantRole> {
        MerchantRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A role an owner may give to staff (an invite or a role change): not `owner`.
    pub fn parse_staff(s: &str) -> Option<MerchantRole> {
        MerchantRole::parse(s).filter(|r| *r != MerchantRole::Owner)
    }

    pub fn allows(self, p: Permission) -> bool {
        use MerchantRole::*;
        use Permission::*;
        match (self, p) {
            (Owner, _) => true,
            (Manager, Orders | Refund | Codes | Stats) => true,
            (Manager, Settlements | Staff) => false,
            (Cashier, Orders) => true,
            (Cashier, Refund | Codes | Stats | Settlements | Staff) => false,
        }
    }

    pub fn orders_scope(self) -> OrdersScope {
        match self {
            MerchantRole::Cashier => OrdersScope::Today,
            MerchantRole::Owner | MerchantRole::Manager => OrdersScope::All,
        }
    }
}

/// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or copied by hand
/// has no look-alikes.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of an invite code: 12 x 5 bits = 60 bits of entropy.
pub const INVITE_CODE_CHARS: usize = 12;

/// Formats 60 random bits as an invite code, `XXXX-XXXX-XXXX`.
pub fn format_invite_code(random: u64) -> String {
    let mut out = String::with_capacity(INVITE_CODE_CHARS + 2);
    for i in 0..INVITE_CODE_CHARS {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let shift = 5 * (INVITE_CODE_CHARS - 1 - i);
        let idx = usize::try_from((random >> shift) & 31).unwrap_or(0);
        out.push(char::from(ALPHABET[idx]));
    }
    out
}

/// The canonical form of a typed code: case, spaces and dashes ignored, and the look-alikes
/// read as Crockford does (O as 0, I and L as 1). `None` when it cannot be a code at all.
pub fn normalize_invite_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let mut out = String::with_capacity(INVITE_CODE_CHARS);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' | '\u{3000}' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == INVITE_CODE_CHARS).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_table() {
        use MerchantRole::*;
        use Permission::*;
        let table = [
            (Orders, [true, true, true]),
            (Refund, [true, true, false]),
            (Codes, [true, true, false]),
            (Stats, [true, true, false]),
            (Settlements, [true, false, false]),
            (Staff, [true, false, false]),
        ];
        for (p, row) in table {
            for (role, want) in [Owner, Manager, Cashier].into_iter().zip(row) {
                assert_eq!(role.allows(p), want, "{role:?} {p:?}");
            }
        }
        assert_eq!(Cashier.orders_scope(), OrdersScope::Today);
        assert_eq!(Manager.orders_scope(), OrdersScope::All);
        assert_eq!(MerchantRole::parse_staff("owner"), None);
        assert_eq!(MerchantRole::parse_staff("manager"), Some(Manager));
        assert_eq!(MerchantRole::parse("boss"), None);
    }

    #[test]
    fn codes_format_and_normalize() {
        let code = format_invite_code(0x0FFF_FFFF_FFFF_FFFF);
        assert_eq!(code, "ZZZZ-ZZZZ-ZZZZ");
        assert_eq!(format_invite_code(0), "0000-0000-0000");
        let code = format_invite_code(0x0123_4567_89AB_CDEF);
        assert_eq!(code.len(), 14);
        let plain = code.replace('-', "");
        assert_eq!(
            normalize_invite_code(&code).as_deref(),
            Some(plain.as_str())
        );
        assert_eq!(
            normalize_invite_code(&format!(" {} ", code.to_lowercase())).as_deref(),
            Some(plain.as_str())
        );
        assert_eq!(
            normalize_invite_code("oooo-iiii-llll").as_deref(),
            Some("000011111111")
        );
        assert_eq!(normalize_invite_code("UUUU-0000-0000"), None);
        assert_eq!(normalize_invite_code("0000-0000"), None);
        assert_eq!(normalize_invite_code("0000-0000-0000-0"), None);
        assert_eq!(normalize_invite_code("零零零零"), None);
    }
}
