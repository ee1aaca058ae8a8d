//! The UI in English and Arabic. English strings are the keys; a missing translation shows
//! the English text (never an empty label). In Arabic the layout mirrors: see `app.rs`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    En,
    Ar,
}

impl Lang {
    pub fn rtl(self) -> bool {
        self == Lang::Ar
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "ar" => Some(Lang::Ar),
            _ => None,
        }
    }
}

const AR: &[(&str, &str)] = &[
    ("Welcome to Majlis", "مرحبا بك في مجلس"),
    ("Your name", "اسمك"),
    ("Create an organization", "إنشاء مؤسسة"),
    ("Organization name", "اسم المؤسسة"),
    ("Create", "إنشاء"),
    ("Join an organization", "الانضمام إلى مؤسسة"),
    ("Organization id", "معرف المؤسسة"),
    ("Join", "انضمام"),
    ("This device's id", "معرف هذا الجهاز"),
    ("Copy", "نسخ"),
    ("Copied", "تم النسخ"),
    (
        "Waiting for an admin to add this device to the roster. Give them the id above.",
        "في انتظار أن يضيف المسؤول هذا الجهاز إلى القائمة. أعطه المعرف أعلاه.",
    ),
    ("Channels", "القنوات"),
    ("Direct messages", "الرسائل المباشرة"),
    ("Conversations", "المحادثات"),
    ("People", "الأشخاص"),
    (
        "Messages are end-to-end encrypted: only the members of a channel or conversation can read them.",
        "الرسائل مشفرة من طرف إلى طرف: لا يقرؤها إلا أعضاء القناة أو المحادثة.",
    ),
    (
        "This organization archives all messages. Archive devices that can read every channel and conversation:",
        "هذه المؤسسة تؤرشف كل الرسائل. أجهزة الأرشيف التي تقرأ كل القنوات والمحادثات:",
    ),
    (
        "This device's data is NOT sealed: no OS keyring was found, so its data key is in a file beside the data.",
        "بيانات هذا الجهاز غير مختومة: لم يُعثر على حافظة مفاتيح النظام، فمفتاح البيانات في ملف بجانبها.",
    ),
    (
        "The roster is contested: two admins removed each other. This device keeps the version it saw first until the org root key settles it.",
        "قائمة الأعضاء متنازع عليها: أزال مسؤولان كل منهما الآخر. يحتفظ هذا الجهاز بما رآه أولاً حتى يحسمه مفتاح المؤسسة الجذري.",
    ),
    (
        "[encrypted: waiting for the key to this message]",
        "[مشفرة: في انتظار مفتاح هذه الرسالة]",
    ),
    ("Network", "الشبكة"),
    ("Admin", "الإدارة"),
    ("Message", "رسالة"),
    ("Send", "إرسال"),
    ("Attach file", "إرفاق ملف"),
    ("Share", "مشاركة"),
    ("File path", "مسار الملف"),
    ("You", "أنت"),
    ("sending…", "جار الإرسال…"),
    ("sent", "أرسلت"),
    ("Today", "اليوم"),
    ("Yesterday", "أمس"),
    ("bot", "بوت"),
    ("edited", "معدّلة"),
    ("message deleted", "رسالة محذوفة"),
    ("replies", "ردود"),
    ("Delete", "حذف"),
    ("Mentions", "الإشارات"),
    ("read", "قُرئت"),
    ("read by", "قرأها"),
    ("delivered", "وصلت"),
    ("delivered to", "وصلت إلى"),
    ("is typing…", "يكتب…"),
    ("are typing…", "يكتبون…"),
    ("away", "غير متواجد"),
    ("Thread", "سلسلة الردود"),
    ("Reply", "رد"),
    ("Close", "إغلاق"),
    ("Edit message", "تعديل الرسالة"),
    ("Save", "حفظ"),
    ("Reply in thread", "الرد في سلسلة"),
    ("Edit", "تعديل"),
    ("online", "متصل"),
    ("offline", "غير متصل"),
    ("last seen", "آخر ظهور"),
    ("never seen", "لم يظهر بعد"),
    ("devices", "الأجهزة"),
    ("Members", "الأعضاء"),
    ("Add a member", "إضافة عضو"),
    ("Name", "الاسم"),
    ("Device id", "معرف الجهاز"),
    ("Role", "الدور"),
    ("Add", "إضافة"),
    ("Add a device", "إضافة جهاز"),
    ("Member", "العضو"),
    ("Revoke", "إبطال"),
    ("Remove", "إزالة"),
    ("Confirm", "تأكيد"),
    ("Cancel", "إلغاء"),
    ("Create a channel", "إنشاء قناة"),
    ("Channel name", "اسم القناة"),
    ("Everyone", "الجميع"),
    ("Policy", "السياسة"),
    ("Members may create channels", "يمكن للأعضاء إنشاء القنوات"),
    ("Direct messages:", "الرسائل المباشرة:"),
    ("Audit log", "سجل التدقيق"),
    ("Data governance", "حوكمة البيانات"),
    ("Retention:", "مدة الاحتفاظ:"),
    ("Keep messages (days, or forever)", "الاحتفاظ بالرسائل (أيام، أو forever للأبد)"),
    ("Set", "تعيين"),
    ("Legal hold", "حجز قانوني"),
    ("Release", "رفع الحجز"),
    ("Erasure", "محو"),
    ("Reason", "السبب"),
    ("Place a legal hold", "وضع حجز قانوني"),
    ("Erase their data", "محو بياناته"),
    ("This organization keeps:", "تحتفظ هذه المؤسسة بـ:"),
    ("Export my data", "تصدير بياناتي"),
    ("muted", "مكتوم"),
    ("members", "أعضاء"),
    ("Mute", "كتم"),
    ("Unmute", "إلغاء الكتم"),
    ("Members' apps send read receipts", "ترسل تطبيقات الأعضاء إشعارات القراءة"),
    ("this device", "هذا الجهاز"),
    ("Language", "اللغة"),
    ("Diagnostics", "التشخيص"),
    ("Copy diagnostics", "نسخ التشخيص"),
    ("Connect", "اتصال"),
    ("Add a peer by address", "إضافة جهاز بعنوانه"),
    ("Load older messages", "تحميل رسائل أقدم"),
    ("No messages yet.", "لا توجد رسائل بعد."),
    ("Connected peers", "الأجهزة المتصلة"),
    ("Roster version", "إصدار القائمة"),
    ("Search", "بحث"),
    ("No messages found.", "لم يُعثر على رسائل."),
    (
        "words, \"a phrase\", from:name in:#channel has:file after:2026-01-31",
        "كلمات، \"عبارة\"، from:الاسم in:#القناة has:file after:2026-01-31",
    ),
    ("Channels you left", "قنوات غادرتها"),
    ("Description (optional)", "الوصف (اختياري)"),
    ("Details", "التفاصيل"),
    ("Edit topic", "تعديل الموضوع"),
    ("Join channel", "الانضمام إلى القناة"),
    ("Leave channel", "مغادرة القناة"),
    (
        "Leaving takes it out of your list on all your devices; you can join again.",
        "المغادرة تزيلها من قائمتك على كل أجهزتك؛ يمكنك الانضمام مجددا.",
    ),
    ("Left the channel", "غادروا القناة"),
    (
        "No topic yet. Set one so people know what this conversation is for.",
        "لا يوجد موضوع بعد. حدده ليعرف الجميع الغرض من هذه المحادثة.",
    ),
    (
        "Nothing pinned. Right-click a message to pin it.",
        "لا شيء مثبت. انقر بالزر الأيمن على رسالة لتثبيتها.",
    ),
    ("Pinned", "المثبتة"),
    ("pinned", "مثبتة"),
    ("Topic", "الموضوع"),
    ("What this conversation is for", "الغرض من هذه المحادثة"),
    ("set by", "حدده"),
    ("Pin", "تثبيت"),
    ("Light theme", "المظهر الفاتح"),
    ("Also send to the channel", "أرسل إلى القناة أيضا"),
    ("Direct message", "رسالة مباشرة"),
    ("device", "جهاز"),
    ("reply", "رد"),
    (
        "No messages yet. Only the two of you (and the org's archive, if it has one) can read what you write here.",
        "لا توجد رسائل بعد. لا يقرأ ما تكتبه هنا إلا أنتما (وأرشيف المؤسسة إن وُجد).",
    ),
    (
        "No messages yet. Write the first one below; everyone who reads this channel will see it.",
        "لا توجد رسائل بعد. اكتب أول رسالة في الأسفل؛ سيراها كل من يقرأ هذه القناة.",
    ),
    (
        "Messages for your organization that stay on your own network: no server, no cloud, no internet needed.",
        "رسائل مؤسستك تبقى على شبكتك: بلا خادم ولا سحابة ولا حاجة إلى الإنترنت.",
    ),
    ("How your colleagues will see you.", "هكذا سيراك زملاؤك."),
    (
        "You become its first admin, then add colleagues by their device id.",
        "تصبح أول مشرف فيها، ثم تضيف زملاءك بمعرفات أجهزتهم.",
    ),
    (
        "Ask an admin for the organization id. Next you will see this device's id: give it to the admin, who adds it to the roster.",
        "اطلب معرف المؤسسة من أحد المشرفين. بعدها سترى معرف هذا الجهاز: أعطه للمشرف ليضيفه إلى القائمة.",
    ),
    (
        "The device id is this computer's public key. It is not a secret: an admin adds it to the organization's roster, and from then on only this device can connect with it.",
        "معرف الجهاز هو المفتاح العام لهذا الحاسوب. ليس سرا: يضيفه المشرف إلى قائمة المؤسسة، ومن بعدها لا يتصل به إلا هذا الجهاز.",
    ),
    ("Dark theme", "المظهر الداكن"),
    ("Unpin", "إلغاء التثبيت"),
];

/// `en` in `lang`.
pub fn tr(lang: Lang, en: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Ar => AR.iter().find(|(k, _)| *k == en).map_or(en, |(_, v)| v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arabic_entry_is_arabic_and_unique() {
        let mut keys = std::collections::HashSet::new();
        for (en, ar) in AR {
            assert!(keys.insert(en), "{en} twice");
            assert!(crate::text::has_rtl(ar), "{en} has no Arabic translation");
        }
        assert_eq!(tr(Lang::Ar, "Send"), "إرسال");
        assert_eq!(tr(Lang::Ar, "not translated"), "not translated");
    }
}
