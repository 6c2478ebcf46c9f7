//! The page frame every dashboard page shares: head (stylesheet and script from
//! `/assets`, nothing from elsewhere), the navigation, sign-in state.

use maud::{DOCTYPE, Markup, html};

use super::access::Viewer;

/// Which section of the navigation a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Runs,
    Pipelines,
    Plugins,
    Deliveries,
    None,
}

/// A whole page: `title`, the navigation with `current` marked, `body`.
pub(super) fn page(title: &str, viewer: Option<&Viewer>, current: Nav, body: Markup) -> Markup {
    let link = |nav: Nav, href: &str, text: &str| {
        html! { a href=(href) aria-current=[(nav == current).then_some("page")] { (text) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Powernode" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header {
                    nav {
                        a.brand href="/" { "Powernode" }
                        @if let Some(viewer) = viewer {
                            (link(Nav::Runs, "/runs", "Runs"))
                            (link(Nav::Pipelines, "/pipelines", "Pipelines"))
                            (link(Nav::Plugins, "/plugins", "Plugins"))
                            (link(Nav::Deliveries, "/deliveries", "Deliveries"))
                            span.spacer {}
                            @if let Some(csrf) = &viewer.csrf {
                                form.inline method="post" action="/signout" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.link type="submit" { "Sign out" }
                                }
                            } @else {
                                a href="/signin" { "Sign in" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A run's or step's state as a coloured badge.
pub(super) fn badge(state: &str) -> Markup {
    html! { span class={ "badge " (state) } { (state.replace('_', " ")) } }
}

/// A hidden CSRF field for a form of `viewer`'s session.
pub(super) fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf.as_deref().unwrap_or_default()); }
}
