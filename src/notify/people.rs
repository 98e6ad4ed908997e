//! People: the directory entries a caller already resolved, by address, so
//! that the notifier does not read them again.

use crate::store::directory::Identity;

/// Who the addresses of one message are, as the pipeline found them (the
/// sender, the copied addresses, a contact it just created).
#[derive(Debug, Clone, Default)]
pub struct People {
    known: Vec<(String, Identity)>,
}

impl People {
    /// Records who `address` is, replacing what was known of it.
    pub fn insert(&mut self, address: &str, identity: Identity) {
        match self.known.iter_mut().find(|(a, _)| a == address) {
            Some((_, known)) => *known = identity,
            None => self.known.push((address.to_string(), identity)),
        }
    }

    /// Who `address` is, when the caller resolved it; `None` means "not looked
    /// up", not "nobody".
    pub fn get(&self, address: &str) -> Option<&Identity> {
        self.known
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, identity)| identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::directory::Organization;

    #[test]
    fn the_latest_entry_for_an_address_counts_and_unknown_addresses_are_none() {
        let mut people = People::default();
        assert!(people.get("a@example.org").is_none());
        people.insert("a@example.org", Identity::default());
        people.insert(
            "a@example.org",
            Identity {
                organization: Some(Organization {
                    id: 7,
                    name: "Acme".into(),
                    parent_id: None,
                    shares_tickets: false,
                    language: None,
                }),
                ..Identity::default()
            },
        );
        let found = people.get("a@example.org").expect("known");
        assert_eq!(found.organization.as_ref().map(|o| o.id), Some(7));
        assert!(people.get("b@example.org").is_none());
    }
}
