//! A mailbox's containers of one resource (MICROSOFT.md §3.3, §3.5, §3.6): its mail folders,
//! nested ones included; its contact folders and the default Contacts folder; its To Do lists.
//!
//! A listing starts with one or two GETs ([`MicrosoftClient::listing_starts`]), which a `$batch`
//! may carry along with delta requests (`batch.rs`). It is finished from their answers
//! ([`MicrosoftClient::containers_from`]): further pages and child folders are fetched one
//! request at a time, so a listing is never silently partial. A batch's caller finishes a
//! listing that needs more ([`ListingStart`]) through its own retry policy.

use crate::delta::{RawPage, local_error};
use crate::{Container, GraphError, MailboxRef, MicrosoftClient};
use domain::Resource;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

/// Page size asked for a listing.
pub(crate) const LISTING_PAGE: u32 = 100;
const MAIL_FOLDER_QUERY: [(&str, &str); 2] = [("$select", "id,displayName,childFolderCount,totalItemCount"), ("$top", "100")];
const FOLDER_SELECT: [(&str, &str); 1] = [("$select", "id,displayName")];
/// A defensive bound: no mailbox has ten thousand pages, or folders, of folders.
const LISTING_BOUND: usize = 10_000;

#[derive(Deserialize)]
struct RawContainer {
    id: String,
    #[serde(default, rename = "displayName")]
    display_name: Option<String>,
    #[serde(default, rename = "childFolderCount")]
    child_folder_count: Option<u64>,
    #[serde(default, rename = "totalItemCount")]
    total_item_count: Option<u64>,
}

/// The answers a listing started with in a batch, when it needs more requests (another page,
/// nested mail folders): [`MicrosoftClient::finish_listing`] makes them.
#[derive(Debug, Clone)]
pub struct ListingStart {
    pub(crate) resource: Resource,
    pub(crate) firsts: Vec<Result<Value, GraphError>>,
}

/// The code of the answer [`MicrosoftClient::containers_from`] gives without a token when the
/// listing needs another request.
pub(crate) const LISTING_CONTINUES: &str = "listingContinues";

impl From<RawContainer> for Container {
    fn from(f: RawContainer) -> Container {
        Container { id: f.id, display_name: f.display_name.unwrap_or_default(), total_items: f.total_item_count }
    }
}

fn parsed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, GraphError> {
    serde_json::from_value(v).map_err(|e| local_error("unexpectedResponse", e.to_string()))
}

impl MicrosoftClient {
    /// Every container of `resource` in the mailbox, sorted by id (none for the calendar, whose
    /// delta is a window of the default calendar).
    pub async fn containers(&self, token: &SecretString, mailbox: &MailboxRef, resource: Resource) -> Result<Vec<Container>, GraphError> {
        let other = matches!(mailbox, MailboxRef::User(_));
        let mut firsts = Vec::new();
        for url in self.listing_starts(mailbox, resource)? {
            let answer = self.listing_get(Some(token), &url, other).await;
            let failed = answer.is_err();
            firsts.push(answer);
            if failed {
                break;
            }
        }
        self.containers_from(Some(token), mailbox, resource, firsts).await
    }

    /// The containers of a listing started in a batch, fetching what it still needs.
    pub async fn finish_listing(
        &self,
        token: &SecretString,
        mailbox: &MailboxRef,
        start: &ListingStart,
    ) -> Result<Vec<Container>, GraphError> {
        self.containers_from(Some(token), mailbox, start.resource, start.firsts.clone()).await
    }

    /// The GETs a listing starts with: `/mailFolders`; `/contactFolders` and the default
    /// Contacts folder, which Graph may leave out of that list (addressed by its well-known name
    /// `contacts`); `/todo/lists`.
    pub(crate) fn listing_starts(&self, mailbox: &MailboxRef, resource: Resource) -> Result<Vec<String>, GraphError> {
        let (mut segs, _) = Self::mailbox_segments(mailbox);
        Ok(match resource {
            Resource::Mail => {
                segs.push("mailFolders");
                vec![self.graph_link(&segs, &MAIL_FOLDER_QUERY)?]
            }
            Resource::Contacts => {
                segs.push("contactFolders");
                let folders = self.graph_link(&segs, &FOLDER_SELECT)?;
                segs.push("contacts");
                vec![folders, self.graph_link(&segs, &FOLDER_SELECT)?]
            }
            Resource::Tasks => {
                segs.extend(["todo", "lists"]);
                vec![self.graph_link(&segs, &[])?]
            }
            Resource::Calendar => Vec::new(),
        })
    }

    /// Finishes a listing from the answers to its [`listing_starts`](Self::listing_starts), in
    /// their order. A mailbox or server that does not know the default Contacts folder's
    /// well-known name (400/404) simply has no extra folder; any other failure is the listing's.
    /// Without a `token` it sends nothing: a listing that needs more is [`LISTING_CONTINUES`].
    pub(crate) async fn containers_from(
        &self,
        token: Option<&SecretString>,
        mailbox: &MailboxRef,
        resource: Resource,
        firsts: Vec<Result<Value, GraphError>>,
    ) -> Result<Vec<Container>, GraphError> {
        let other = matches!(mailbox, MailboxRef::User(_));
        let mut firsts = firsts.into_iter();
        let mut first = || firsts.next().unwrap_or_else(|| Err(local_error("batchIncomplete", "a listing's answer is missing".into())));
        let mut out: Vec<Container> = match resource {
            Resource::Mail => self.mail_folders_from(token, mailbox, first()?, other).await?,
            Resource::Contacts | Resource::Tasks => {
                self.rest_of_listing(token, first()?, other).await?.into_iter().map(Container::from).collect()
            }
            Resource::Calendar => Vec::new(),
        };
        if resource == Resource::Contacts {
            match first() {
                Ok(v) => {
                    let default: Container = parsed::<RawContainer>(v)?.into();
                    if !out.iter().any(|c| c.id == default.id) {
                        out.push(default);
                    }
                }
                Err(e) if matches!(e.status, Some(400) | Some(404)) && !matches!(e.class(), crate::FailureClass::NeedsAttention(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Every mail folder, nested ones listed through `childFolders` wherever `childFolderCount`
    /// is not zero.
    async fn mail_folders_from(
        &self,
        token: Option<&SecretString>,
        mailbox: &MailboxRef,
        first: Value,
        other: bool,
    ) -> Result<Vec<Container>, GraphError> {
        let (mut segs, _) = Self::mailbox_segments(mailbox);
        segs.push("mailFolders");
        let mut pending = self.rest_of_listing(token, first, other).await?;
        let mut out = Vec::new();
        while let Some(f) = pending.pop() {
            if f.child_folder_count.unwrap_or(0) > 0 && out.len() < LISTING_BOUND {
                let mut child = segs.clone();
                child.extend([f.id.as_str(), "childFolders"]);
                let first = self.listing_get(token, &self.graph_link(&child, &MAIL_FOLDER_QUERY)?, other).await?;
                pending.extend(self.rest_of_listing(token, first, other).await?);
            }
            out.push(f.into());
        }
        Ok(out)
    }

    /// A collection's items from its first page on, following `@odata.nextLink`s.
    async fn rest_of_listing(&self, token: Option<&SecretString>, first: Value, other: bool) -> Result<Vec<RawContainer>, GraphError> {
        let mut out = Vec::new();
        let mut page: RawPage = parsed(first)?;
        for _ in 0..LISTING_BOUND {
            for v in std::mem::take(&mut page.value) {
                out.push(parsed(v)?);
            }
            let Some(next) = page.next_link.take() else { return Ok(out) };
            if !self.is_graph_link(&next) {
                return Err(local_error("foreignLink", "a nextLink pointed away from Graph".into()));
            }
            page = parsed(self.listing_get(token, &next, other).await?)?;
        }
        Err(local_error("tooManyPages", "collection paging did not end".into()))
    }

    /// One more request of a listing, if it may send one.
    async fn listing_get(&self, token: Option<&SecretString>, url: &str, other: bool) -> Result<Value, GraphError> {
        match token {
            Some(token) => self.sync_get(token, url, LISTING_PAGE, other).await,
            None => Err(local_error(LISTING_CONTINUES, "the listing needs another request".into())),
        }
    }
}
