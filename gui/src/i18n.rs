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
    ("Your notes", "ملاحظاتك"),
    (
        "Your notes: what you write here is on each of your devices, and only there (and in the org's archive, if it has one). Keep links, drafts and reminders to yourself here.",
        "ملاحظاتك: ما تكتبه هنا يكون على كل جهاز من أجهزتك، وعليها وحدها (وفي أرشيف المؤسسة إن كان لها أرشيف). احفظ هنا الروابط والمسودات وما تذكّر به نفسك.",
    ),
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
    ("Your join code", "رمز انضمامك"),
    ("Files", "الملفات"),
    ("No files shared here yet.", "لم تُشارَك ملفات هنا بعد."),
    ("+{count} more (search has:file)", "و{count} أخرى (ابحث بـ has:file)"),
    ("A device", "جهاز"),
    ("{who} asks to join {org} (join code {code}): compare the code with theirs, then add it under Admin.", "{who} يطلب الانضمام إلى {org} (رمز الانضمام {code}): طابِق الرمز مع رمزه، ثم أضفه من الإدارة."),
    ("Majlis: asking to join", "مجلس: طلب انضمام"),
    ("More devices ask to join: see Admin.", "أجهزة أخرى تطلب الانضمام: انظر الإدارة."),
    ("Emoji", "رموز تعبيرية"),
    ("More reactions", "تفاعلات أخرى"),
    (
        "An admin on this network sees this device asking to join as {name}, with this code. Tell them the code: they add this device once it is the same as the one they see. Where they cannot see it (another network), give them the id below.",
        "يرى المسؤول على هذه الشبكة هذا الجهاز يطلب الانضمام باسم {name} مع هذا الرمز. أخبره بالرمز: يضيف هذا الجهاز متى طابق الرمز الذي يراه. وحيث لا يراه (على شبكة أخرى)، أعطه المعرف أدناه.",
    ),
    ("Waiting to join", "بانتظار الانضمام"),
    (
        "Before adding a device, ask its owner for the join code on their screen, and add it only if it is the same: anyone on the network can ask under any name.",
        "قبل إضافة جهاز، اطلب من صاحبه رمز الانضمام الظاهر على شاشته، ولا تضفه إلا إن كان هو نفسه: يستطيع أي أحد على الشبكة أن يطلب الانضمام بأي اسم.",
    ),
    ("asks to join as {name}", "يطلب الانضمام باسم {name}"),
    ("(no name given)", "(بلا اسم)"),
    ("tried to connect", "حاول الاتصال"),
    ("announces itself on this network", "يعلن عن نفسه على هذه الشبكة"),
    ("Join code", "رمز الانضمام"),
    ("Add as a member", "أضفه عضوًا"),
    ("Add as another device of {name}", "أضفه جهازًا آخر لـ {name}"),
    ("Admin · {count} waiting", "الإدارة · {count} بالانتظار"),
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
    ("{members} is typing…", "{members} يكتب…"),
    ("{members} are typing…", "{members} يكتبون…"),
    ("away", "غير متواجد"),
    ("Thread", "سلسلة الردود"),
    ("Reply", "رد"),
    ("Close", "إغلاق"),
    ("Edit message", "تعديل الرسالة"),
    ("Save", "حفظ"),
    ("Reply in thread", "الرد في سلسلة"),
    ("Mark unread", "تعليم كغير مقروءة"),
    ("Starred", "المميزة بنجمة"),
    ("Star", "تمييز بنجمة"),
    ("Unstar", "إزالة النجمة"),
    ("Copy text", "نسخ النص"),
    ("Copy link", "نسخ الرابط"),
    ("Copy join link", "نسخ رابط الانضمام"),
    (
        "For a newcomer on another network: pasted at the first start, it joins the organization and finds this device. It grants nothing; you still add the device.",
        "لمنضم جديد على شبكة أخرى: يُلصق عند التشغيل الأول، فينضم إلى المؤسسة ويجد هذا الجهاز. لا يمنح أي صلاحية؛ وتبقى أنت من يضيف الجهاز.",
    ),
    (
        "or the join link an admin sent (majlis:join/…)",
        "أو رابط الانضمام الذي أرسله مشرف (majlis:join/…)",
    ),
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
    ("(Everyone: none ticked)", "(الجميع: إن لم تختر أحدا)"),
    ("Channel members", "أعضاء القناة"),
    ("Archived", "مؤرشفة"),
    ("Nothing pinned.", "لا شيء مثبت."),
    ("Archive #{channel}", "أرشفة ‎#{channel}"),
    ("Rename", "إعادة التسمية"),
    ("New name", "الاسم الجديد"),
    ("#{was} is now called #{now}", "أصبح اسم القناة ‎#{was} الآن ‎#{now}"),
    ("Bring #{channel} back", "إعادة ‎#{channel}"),
    (
        "Archive #{channel}? Its history stays readable and searchable; nobody can post in it until an admin brings it back.",
        "أرشفة ‎#{channel}؟ يبقى تاريخها مقروءًا وقابلًا للبحث، ولا يمكن لأحد النشر فيها حتى يعيدها مشرف.",
    ),
    (
        "#{channel} is archived: its history stays readable and searchable, and nothing more can be posted in it",
        "القناة ‎#{channel} مؤرشفة: يبقى تاريخها مقروءًا وقابلًا للبحث، ولا يمكن نشر شيء آخر فيها",
    ),
    ("Change members", "تغيير الأعضاء"),
    (
        "You are no longer on #{channel}: an admin changed who is on it",
        "لم تعد في #{channel}: غيّر مشرف أعضاءها",
    ),
    (
        "{member} has left the organization: this conversation stays readable, and nothing more can be sent in it",
        "غادر {member} المؤسسة: تبقى هذه المحادثة مقروءة، ولا يمكن إرسال شيء آخر فيها",
    ),
    ("Channel", "القناة"),
    ("Pick a channel", "اختر قناة"),
    ("Open to every member", "مفتوحة لكل الأعضاء"),
    (
        "Take {members} off #{channel}? They get nothing said there from now on.",
        "إخراج {members} من #{channel}؟ لن يصلهم شيء مما يقال فيها بعد الآن.",
    ),
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
    ("every message", "كل رسالة"),
    ("Notify me of every message", "أعلمني بكل رسالة"),
    ("Notify me of mentions only", "أعلمني بالإشارات إليّ فقط"),
    ("Quiet hours", "ساعات الهدوء"),
    (
        "More new messages: open Majlis to read them.",
        "رسائل جديدة أخرى: افتح مجلس لقراءتها.",
    ),
    ("Custom hours…", "ساعات أخرى…"),
    ("Notification hours", "ساعات الإشعارات"),
    ("Monday", "الاثنين"),
    ("Tuesday", "الثلاثاء"),
    ("Wednesday", "الأربعاء"),
    ("Thursday", "الخميس"),
    ("Friday", "الجمعة"),
    ("Saturday", "السبت"),
    ("Sunday", "الأحد"),
    ("From", "من"),
    ("To", "إلى"),
    ("Earlier start", "بداية أبكر"),
    ("Later start", "بداية لاحقة"),
    ("Earlier end", "نهاية أبكر"),
    ("Later end", "نهاية لاحقة"),
    (
        "Pick at least one day, and two different hours.",
        "اختر يوما واحدا على الأقل، وساعتين مختلفتين.",
    ),
    ("Mark as read", "تعليم كمقروءة"),
    ("Mark all as read", "تعليم الكل كمقروء"),
    ("Notification hours:", "ساعات الإشعارات:"),
    ("Any time", "في أي وقت"),
    ("Monday to Friday, 9:00–18:00", "من الاثنين إلى الجمعة، 9:00–18:00"),
    ("Sunday to Thursday, 9:00–18:00", "من الأحد إلى الخميس، 9:00–18:00"),
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
    ("No topic.", "لا موضوع لها."),
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
    ("Notifications", "الإشعارات"),
    ("Notifications paused", "الإشعارات متوقفة"),
    (
        "Notifications paused until you resume them",
        "الإشعارات متوقفة حتى تستأنفها",
    ),
    ("Notifications paused until {time}", "الإشعارات متوقفة حتى {time}"),
    ("Pause desktop notifications:", "إيقاف إشعارات سطح المكتب مؤقتا:"),
    ("For 1 hour", "لمدة ساعة"),
    ("Until tomorrow at 9:00", "حتى الغد الساعة 9:00"),
    ("Until Monday at 9:00", "حتى الاثنين الساعة 9:00"),
    ("Until I resume them", "حتى أستأنفها"),
    ("Resume notifications", "استئناف الإشعارات"),
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
        "You become its first admin, then add colleagues as their devices ask to join, each by the code on its screen.",
        "تصبح أول مشرف فيها، ثم تضيف زملاءك حين تطلب أجهزتهم الانضمام، كلًّا بالرمز الظاهر على شاشته.",
    ),
    (
        "Pick your organization if it invites on this network, or ask an admin for its id. Next you will see a join code: the admin adds this device once it is the same as the code they see.",
        "اختر مؤسستك إن كانت تدعو على هذه الشبكة، أو اطلب معرفها من أحد المشرفين. بعدها سترى رمز انضمام: يضيف المشرف هذا الجهاز متى طابق الرمز الذي يراه.",
    ),
    ("Join {org} (inviting on this network)", "انضم إلى {org} (تدعو على هذه الشبكة)"),
    ("Inviting newcomers on this network until {time}.", "تدعو القادمين الجدد على هذه الشبكة حتى {time}."),
    ("Stop inviting", "أوقف الدعوة"),
    ("Invite newcomers on this network for 15 minutes", "ادعُ القادمين الجدد على هذه الشبكة لمدة 15 دقيقة"),
    ("Newcomers on this network can pick this organization until {time}.", "يستطيع القادمون الجدد على هذه الشبكة اختيار هذه المؤسسة حتى {time}."),
    ("No longer inviting.", "توقفت الدعوة."),
    (
        "The device id is this computer's public key. It is not a secret: an admin adds it to the organization's roster, and from then on only this device can connect with it.",
        "معرف الجهاز هو المفتاح العام لهذا الحاسوب. ليس سرا: يضيفه المشرف إلى قائمة المؤسسة، ومن بعدها لا يتصل به إلا هذا الجهاز.",
    ),
    ("Dark theme", "المظهر الداكن"),
    ("Unpin", "إلغاء التثبيت"),
    // Texts with {name} places: see `tr_with`.
    ("#{channel} is private and does not list you; ask an admin to add you.", "القناة #{channel} خاصة ولا تضمّك؛ اطلب من أحد المشرفين إضافتك."),
    ("'{days}' is not a number of days; write 30, or forever", "'{days}' ليس عددا من الأيام؛ اكتب 30، أو forever"),
    ("An admin removed this device from its organization on {date}, and it erased its keys and history then. To use it again, create or join an organization: that makes a new device id, which an admin adds.", "أزال أحد المشرفين هذا الجهاز من مؤسسته في {date}، فمحا الجهاز مفاتيحه وسجله حينها. لاستخدامه من جديد، أنشئ مؤسسة أو انضم إلى واحدة: ينشئ ذلك معرف جهاز جديدا يضيفه المشرف."),
    ("An admin removed this device from its organization, and it erased its keys and history then. To use it again, create or join an organization: that makes a new device id, which an admin adds.", "أزال أحد المشرفين هذا الجهاز من مؤسسته، فمحا الجهاز مفاتيحه وسجله حينها. لاستخدامه من جديد، أنشئ مؤسسة أو انضم إلى واحدة: ينشئ ذلك معرف جهاز جديدا يضيفه المشرف."),
    ("An admin removed this device from its organization, but erasing its data failed ({error}). Delete the folder {dir} yourself.", "أزال أحد المشرفين هذا الجهاز من مؤسسته، لكن محو بياناته فشل ({error}). احذف المجلد {dir} بنفسك."),
    ("An admin removed this device from its organization: its keys and history have been erased. Start Majlis again to set it up afresh.", "أزال أحد المشرفين هذا الجهاز من مؤسسته: مُحيت مفاتيحه وسجله. شغّل مجلس من جديد لإعداده من البداية."),
    ("Channel description", "وصف القناة"),
    ("Channel topic", "موضوع القناة"),
    ("Direct messages are turned off by the organization's policy.", "الرسائل المباشرة معطلة بسياسة المؤسسة."),
    ("Download", "تنزيل"),
    ("Picture {file}", "صورة {file}"),
    ("No preview", "لا معاينة"),
    ("Picture {file}, enlarged", "صورة {file} مكبّرة"),
    ("Download {file}", "تنزيل {file}"),
    ("Enter the organization's name.", "أدخل اسم المؤسسة."),
    ("Enter your name first.", "أدخل اسمك أولا."),
    ("Erase everything {member} wrote, on every device?", "محو كل ما كتبه {member} على كل الأجهزة؟"),
    ("Erase everything {member} wrote, on every device? A legal hold covers them: it wins until released.", "محو كل ما كتبه {member} على كل الأجهزة؟ يشمله حجز قانوني: يبقى الحجز نافذا حتى يُرفع."),
    ("Go to {place}", "الانتقال إلى {place}"),
    ("Join {channel}", "الانضمام إلى {channel}"),
    ("Majlis could not start for {dir}: {error}", "تعذر تشغيل مجلس للمجلد {dir}: {error}"),
    ("Mention {member}", "الإشارة إلى {member}"),
    ("Message {member}", "مراسلة {member}"),
    ("Nothing looks wrong: connected, on the roster, up to date.", "لا يبدو أن هناك خللا: متصل، ومدرج في القائمة، ومحدّث."),
    ("Release legal hold {hold}? Retention and erasure then apply to what it covered.", "رفع الحجز القانوني {hold}؟ بعدها تسري مدة الاحتفاظ والمحو على ما كان يشمله."),
    ("Remove {member} and all their devices?", "إزالة {member} وكل أجهزته؟"),
    ("Result: {text}", "نتيجة: {text}"),
    ("Thread: {text}", "سلسلة: {text}"),
    ("Revoke device {device} of {member}?", "إبطال الجهاز {device} الخاص بـ {member}؟"),
    ("Save {file}", "حفظ {file}"),
    ("Search messages", "البحث في الرسائل"),
    ("The disk failed under Majlis's data ({error}). Majlis stopped so that nothing more is lost: every message it confirmed is saved. Check the disk, then start Majlis again.", "تعطل القرص الذي يحمل بيانات مجلس ({error}). توقف مجلس كي لا يضيع شيء آخر: كل رسالة أكدها محفوظة. افحص القرص ثم شغّل مجلس من جديد."),
    ("Thread reply", "رد في السلسلة"),
    ("To give a peer by address, enter it above (ADDRESS:PORT).", "لإضافة جهاز بعنوانه، أدخله أعلاه (العنوان:المنفذ)."),
    ("Why can't I see …?", "لماذا لا أرى …؟"),
    ("added {name} ({role})", "أضيف {name} ({role})"),
    ("all", "الجميع"),
    ("channel #{name} now open to everyone", "القناة #{name} الآن للجميع"),
    ("channel #{name} now for {members}", "القناة #{name} الآن لـ {members}"),
    ("channel #{name} for everyone", "القناة #{name} للجميع"),
    ("channel #{name} for {members}", "القناة #{name} لـ {members}"),
    ("channel #{name} removed", "أزيلت القناة #{name}"),
    ("channel #{name} archived", "أُرشفت القناة #{name}"),
    ("channel #{name} brought back", "أُعيدت القناة #{name}"),
    ("channel #{name} renamed #{to}", "أُعيدت تسمية القناة #{name} إلى #{to}"),
    ("{member} is shown as '{full}'", "يظهر {member} باسم «{full}»"),
    ("{member}'s full name taken away", "أُزيل الاسم الكامل لـ {member}"),
    ("Full name", "الاسم الكامل"),
    ("Full names", "الأسماء الكاملة"),
    ("Job titles", "المسميات الوظيفية"),
    ("Job title", "المسمى الوظيفي"),
    ("(Empty: no job title)", "(فارغ: بلا مسمى وظيفي)"),
    ("Set title", "تعيين المسمى"),
    ("{member}'s job title: {title}", "المسمى الوظيفي لـ {member}: {title}"),
    ("{member}'s job title taken away", "أُزيل المسمى الوظيفي لـ {member}"),
    ("Forward to", "إعادة توجيه إلى"),
    ("Send later", "إرسال لاحقًا"),
    ("In 1 hour", "بعد ساعة"),
    ("Tomorrow at 9:00", "غدًا الساعة 9:00"),
    ("Monday at 9:00", "الاثنين الساعة 9:00"),
    ("Sends at {time}: {text}", "تُرسل في {time}: {text}"),
    ("Cancel the message for {time}", "إلغاء الرسالة المقررة في {time}"),
    ("Kept; it is sent at {time}", "حُفظت؛ تُرسل في {time}"),
    ("Taken off the schedule, unsent", "أُزيلت من الجدول ولم تُرسل"),
    (
        "A message kept for later in {channel} was not sent: {why}",
        "لم تُرسل رسالة محفوظة للإرسال لاحقًا في {channel}: {why}",
    ),
    ("Save for later", "حفظ لوقت لاحق"),
    ("Remove from saved", "إزالة من المحفوظات"),
    ("Saved for later", "حُفظت لوقت لاحق"),
    ("Saved", "المحفوظات"),
    ("Threads", "السلاسل"),
    (
        "No threads yet: reply to a message to start one.",
        "لا سلاسل بعد: رد على رسالة لتبدأ واحدة.",
    ),
    ("Taken off the saved messages", "أُزيلت من الرسائل المحفوظة"),
    ("Forwarded to {to}", "أُعيد توجيهها إلى {to}"),
    // Reminders.
    ("Remind me", "ذكّرني"),
    ("You will be reminded at {time}", "ستُذكَّر في {time}"),
    (
        "Reminder: {sender} in {place}: {text}",
        "تذكير: {sender} في {place}: {text}",
    ),
    ("Majlis: reminder", "مجلس: تذكير"),
    // Polls.
    ("Poll", "استطلاع"),
    ("Question", "السؤال"),
    ("Options, one a line", "الخيارات، كل خيار في سطر"),
    ("Several choices", "اختيارات متعددة"),
    ("Ask", "اطرح"),
    ("Close poll", "أغلق الاستطلاع"),
    (
        "Closed by {member} · {count} voted",
        "أغلقه {member} · صوّت {count}",
    ),
    ("{count} voted · one choice", "صوّت {count} · اختيار واحد"),
    (
        "{count} voted · several choices",
        "صوّت {count} · اختيارات متعددة",
    ),
    (
        "Forwarded from {member} in #{channel} ✓",
        "أُعيد توجيهها من {member} في ‎#{channel} ✓",
    ),
    (
        "Forwarded from {member} in #{channel} (you cannot see the original)",
        "أُعيد توجيهها من {member} في ‎#{channel} (لا ترى الأصل)",
    ),
    (
        "Forwarded, said to be from {member} in #{channel}: it does not match the original",
        "أُعيد توجيهها، ويُقال إنها من {member} في ‎#{channel}: لا تطابق الأصل",
    ),
    ("Your status", "حالتك"),
    ("Find", "بحث"),
    ("name, full name, title or @group", "الاسم أو الاسم الكامل أو المسمى أو ‎@مجموعة"),
    ("Group conversation with", "محادثة جماعية مع"),
    ("bilal, chen", "بلال، تشن"),
    ("Start", "ابدأ"),
    (
        "No messages yet. Only the people named above (and the org's archive, if it has one) can read what you write here; to bring someone in, start a new conversation with them.",
        "لا رسائل بعد. لا يقرأ ما تكتبه هنا إلا الأشخاص المذكورون أعلاه (وأرشيف المؤسسة إن وُجد)؛ لإشراك شخص آخر، ابدأ محادثة جديدة معه.",
    ),
    ("In a meeting", "في اجتماع"),
    ("Lasts", "تدوم"),
    ("Until I clear it", "حتى أمسحها"),
    ("30 minutes", "30 دقيقة"),
    ("1 hour", "ساعة"),
    ("4 hours", "4 ساعات"),
    ("1 day", "يوم"),
    ("1 week", "أسبوع"),
    ("Set status", "تعيين الحالة"),
    ("Clear status", "مسح الحالة"),
    ("until {time}", "حتى {time}"),
    ("Groups", "المجموعات"),
    ("Group", "المجموعة"),
    ("Members (comma-separated)", "الأعضاء (بينهم فواصل)"),
    ("Set group", "تعيين المجموعة"),
    ("Delete group", "حذف المجموعة"),
    ("@{group} reaches {members}", "‎@{group} تصل إلى {members}"),
    ("group @{group} deleted", "حُذفت المجموعة ‎@{group}"),
    ("Full name (optional)", "الاسم الكامل (اختياري)"),
    ("New", "جديد"),
    ("Only these post", "لا ينشر فيها إلا هؤلاء"),
    ("everyone on it", "كل من فيها"),
    ("Set who posts", "تحديد من ينشر"),
    ("only {members} may post in #{name}", "لا ينشر في ‎#{name} إلا {members}"),
    ("everyone on #{name} posts again", "عاد كل من في ‎#{name} ينشر"),
    ("Nobody posts in #{channel} now.", "لا أحد ينشر في ‎#{channel} الآن."),
    (
        "Only {names} can post in #{channel}; you read it.",
        "لا ينشر في ‎#{channel} إلا {names}؛ أنت تقرؤها.",
    ),
    (
        "Only {names} can post in #{channel}; you read it and reply in its threads.",
        "لا ينشر في ‎#{channel} إلا {names}؛ أنت تقرؤها وترد في سلاسلها.",
    ),
    ("Only those who post here reply.", "لا يرد هنا إلا من ينشر."),
    ("Readers reply in threads", "القراء يردون في السلاسل"),
    ("the readers of #{name} reply in its threads", "قراء ‎#{name} يردون في سلاسلها"),
    ("only the posters of #{name} reply", "لا يرد في ‎#{name} إلا من ينشر فيها"),
    ("(Empty: shown by the roster name again)", "(فارغ: يظهر باسمه في القائمة من جديد)"),
    ("connecting to {address}…", "جار الاتصال بـ {address}…"),
    ("could not paste the image: {error}", "تعذر لصق الصورة: {error}"),
    (
        "That message is not on this device, or you may not read it.",
        "تلك الرسالة ليست على هذا الجهاز، أو لا يحق لك قراءتها.",
    ),
    ("data directory: {dir}", "مجلد البيانات: {dir}"),
    ("free on its disk: {size} (Majlis keeps {margin} free)", "المتاح على قرصه: {size} (يُبقي مجلس {margin} متاحة)"),
    ("device {device} for {name}", "الجهاز {device} لـ {name}"),
    ("erasure {erasure} of {member}'s data", "المحو {erasure} لبيانات {member}"),
    ("exporting your data…", "جار تصدير بياناتك…"),
    ("file policy changed", "تغيرت سياسة الملفات"),
    ("file policy: up to {size}", "سياسة الملفات: حتى {size}"),
    ("legal hold {hold} placed: {what}", "وُضع الحجز القانوني {hold}: {what}"),
    ("legal hold {hold} released", "رُفع الحجز القانوني {hold}"),
    ("listening on (interfaces and addresses):", "يستمع على (الواجهات والعناوين):"),
    ("mDNS discovery: off", "الاكتشاف عبر mDNS: معطل"),
    ("mDNS discovery: on (_majlis._tcp.local.)", "الاكتشاف عبر mDNS: مفعل (_majlis._tcp.local.)"),
    ("mDNS is off: give peers by address above (ADDRESS:PORT).", "الاكتشاف عبر mDNS معطل: أضف الأجهزة بعناوينها أعلاه (العنوان:المنفذ)."),
    ("not saved: {error}", "لم يُحفظ: {error}"),
    ("not shared: {error}", "لم تتم المشاركة: {error}"),
    ("off", "معطلة"),
    ("org '{name}' created", "أنشئت المؤسسة '{name}'"),
    ("policy: admins create channels, direct messages {dms}", "السياسة: المشرفون ينشئون القنوات، الرسائل المباشرة: {dms}"),
    ("policy: members create channels, direct messages {dms}", "السياسة: الأعضاء ينشئون القنوات، الرسائل المباشرة: {dms}"),
    ("read receipts off", "إشعارات القراءة معطلة"),
    ("read receipts on", "إشعارات القراءة مفعلة"),
    ("removed {name}", "أزيل {name}"),
    ("retention: {rule}", "مدة الاحتفاظ: {rule}"),
    ("revoked device {device} of {name}", "أُبطل الجهاز {device} الخاص بـ {name}"),
    ("roster is now at version {version}", "القائمة الآن في الإصدار {version}"),
    ("saved to {path}", "حُفظ في {path}"),
    ("sharing {file}…", "جار مشاركة {file}…"),
    ("static peers: {count}", "الأجهزة المعطاة بعناوينها: {count}"),
    ("this device: {device}", "هذا الجهاز: {device}"),
    ("{dir} does not open: {error}", "تعذر فتح {dir}: {error}"),
    ("{dir} does not open: {error}. {hint}", "تعذر فتح {dir}: {error}. {hint}"),
    ("{percent}% · {sources} source(s)", "{percent}% · المصادر: {sources}"),
    // The node's diagnostics (`diagnose::Report::findings`), shown in the Network view.
    ("this device ({device}) is not on the org roster: nothing is sent to it and it posts nothing until an admin adds it", "هذا الجهاز ({device}) ليس في قائمة المؤسسة: لا يُرسل إليه شيء ولا ينشر شيئا حتى يضيفه أحد المشرفين"),
    ("the roster is contested from version {version}: two admins removed each other; this device keeps the branch it saw first until the org root key settles it", "القائمة متنازع عليها منذ الإصدار {version}: أزال مشرفان كل منهما الآخر؛ يحتفظ هذا الجهاز بالفرع الذي رآه أولا حتى يحسم مفتاح المؤسسة الجذري الأمر"),
    ("no network interface is up besides loopback: no other host can be reached", "لا توجد واجهة شبكة تعمل سوى الواجهة المحلية: لا يمكن الوصول إلى أي جهاز آخر"),
    ("the node listens on no address", "العقدة لا تستمع على أي عنوان"),
    ("no device of the org is connected: devices on the same network appear within a second over mDNS; if none do, multicast may be blocked there, so give peers by address", "لا يتصل أي جهاز من المؤسسة: تظهر الأجهزة على الشبكة نفسها خلال ثانية عبر mDNS؛ فإن لم يظهر أي منها فقد يكون البث المتعدد محجوبا هناك، فأضف الأجهزة بعناوينها"),
    ("no device of the org is connected, and mDNS is off: give peers by address", "لا يتصل أي جهاز من المؤسسة، وmDNS معطل: أضف الأجهزة بعناوينها"),
    ("static peer {address} is not connected: {error}", "الجهاز المعطى بعنوانه {address} غير متصل: {error}"),
    ("static peer {address} is not connected", "الجهاز المعطى بعنوانه {address} غير متصل"),
    ("{member} holds an older roster (version {theirs} < {ours}); it updates on its own while connected", "لدى {member} قائمة أقدم (الإصدار {theirs} < {ours})؛ تتحدث من تلقاء نفسها ما دام متصلا"),
    ("{member}'s device {device} cannot be reached: {error}", "لا يمكن الوصول إلى جهاز {member} {device}: {error}"),
    ("{member}'s device {device} was seen at {addresses} but cannot be reached: {error}", "ظهر جهاز {member} {device} على {addresses} لكن لا يمكن الوصول إليه: {error}"),
    ("{member}'s device {device} was seen at {addresses} and is not one of this device's neighbours: the org has more devices than the mesh limit, so each device connects to a few per channel and messages travel through them", "ظهر جهاز {member} {device} على {addresses} وليس من جيران هذا الجهاز: في المؤسسة أجهزة أكثر من حد الشبكة، فيتصل كل جهاز ببضعة أجهزة لكل قناة وتمر الرسائل عبرها"),
    ("{member}'s device {device} was seen at {addresses} and is not connected (yet)", "ظهر جهاز {member} {device} على {addresses} ولم يتصل (بعد)"),
    ("{member}'s device {device} has not been seen: it is off, or on a network this one does not reach", "لم يظهر جهاز {member} {device}: إما أنه مطفأ، أو على شبكة لا تصل إليها هذه"),
    ("{member}'s clock is {offset} ahead of this device's: messages dated more than {limit} ahead of a receiver's clock are refused, so one of the two clocks is wrong; set both right (NTP)", "ساعة {member} متقدمة بمقدار {offset} على ساعة هذا الجهاز: تُرفض الرسائل المؤرخة بأكثر من {limit} بعد ساعة المستلم، فإحدى الساعتين خاطئة؛ اضبطهما كلتيهما (NTP)"),
    ("{member}'s clock is {offset} behind this device's: messages dated more than {limit} ahead of a receiver's clock are refused, so one of the two clocks is wrong; set both right (NTP)", "ساعة {member} متأخرة بمقدار {offset} عن ساعة هذا الجهاز: تُرفض الرسائل المؤرخة بأكثر من {limit} بعد ساعة المستلم، فإحدى الساعتين خاطئة؛ اضبطهما كلتيهما (NTP)"),
    ("this device's identity ({device}) is also announced from {address}: a copy of this data directory runs there. Two nodes with one identity take each other's connections; stop the copy and give that computer its own identity (`majlisd init` in a fresh data directory, then have an admin add it)", "هوية هذا الجهاز ({device}) مُعلنة أيضا من {address}: تعمل هناك نسخة من مجلد البيانات هذا. عقدتان بهوية واحدة تتبادلان انتزاع الاتصالات؛ أوقف النسخة وامنح ذلك الحاسوب هويته الخاصة (`majlisd init` في مجلد بيانات جديد، ثم يضيفه أحد المشرفين)"),
    ("a colleague's device holds messages this device signed in '{channel}' from seq {seq} on that this device gave up: this data directory is an older copy (restored from a backup, or copied), and that device took what it signed in their place before anyone else's copy. It refuses what this device sends there. Set this device up afresh (`majlisd init` in a new data directory, `org join`, then an admin adds it and removes this one): its history comes back by catch-up", "لدى جهاز أحد الزملاء رسائل وقّعها هذا الجهاز في '{channel}' ابتداء من الرقم {seq} ثم تخلى عنها: مجلد البيانات هذا نسخة أقدم (مستعادة من نسخة احتياطية، أو منسوخة)، وقد أخذ ذلك الجهاز ما وقّعته قبل أن تصله نسخة أي أحد آخر. وهو يرفض ما يرسله هذا الجهاز هناك. أعد إعداد هذا الجهاز من البداية (`majlisd init` في مجلد بيانات جديد، ثم `org join`، ثم يضيفه أحد المشرفين ويزيل هذا): يعود سجله بالمزامنة"),
    ("{member} signed two different messages at one place of its log in '{channel}' (a modified client, or a device restored from an older copy that posted before catching up): peers hold different branches of it, and what a peer holds of the other branch is not taken from it. An admin should check that device, and revoke it unless it is a restored copy", "وقّع {member} رسالتين مختلفتين في موضع واحد من سجله في '{channel}' (عميل معدّل، أو جهاز مستعاد من نسخة أقدم نشر قبل أن يلحق بالمزامنة): لدى الأجهزة فروع مختلفة منه، ولا يؤخذ من أي جهاز ما لديه من الفرع الآخر. على أحد المشرفين فحص ذلك الجهاز، وإبطاله ما لم يكن نسخة مستعادة"),
    ("refused: nothing listens on that port there (the node is not running, or listens on another port)", "رُفض الاتصال: لا شيء يستمع على ذلك المنفذ هناك (العقدة لا تعمل، أو تستمع على منفذ آخر)"),
    ("timed out: the host does not answer (switched off, a firewall drops the traffic, or it is on a network this one does not reach)", "انتهت المهلة: المضيف لا يجيب (مطفأ، أو جدار حماية يُسقط الحركة، أو هو على شبكة لا تصل إليها هذه)"),
    ("no route to that host from here (another network, or the link is down)", "لا طريق إلى ذلك المضيف من هنا (شبكة أخرى، أو الوصلة معطلة)"),
    ("the other side closed the connection", "أغلق الطرف الآخر الاتصال"),
    ("the handshake failed: what answers there is not a Majlis node of a compatible release", "فشلت المصافحة: ما يجيب هناك ليس عقدة مجلس بإصدار متوافق"),
    ("denied by this node: the device that answers there is not on this roster (another org's device, or one not added yet)", "رفضته هذه العقدة: الجهاز الذي يجيب هناك ليس في هذه القائمة (جهاز مؤسسة أخرى، أو جهاز لم يُضف بعد)"),
    ("another device answers there: the address now belongs to someone else", "يجيب هناك جهاز آخر: صار العنوان لغيره"),
    ("that address is this device itself", "ذلك العنوان هو هذا الجهاز نفسه"),
    ("it closes the connection right after the handshake: its roster does not list this device (it holds an older roster than the one that added this device, or this device was removed there)", "يغلق الاتصال بعد المصافحة مباشرة: قائمته لا تضم هذا الجهاز (لديه قائمة أقدم من التي أضافت هذا الجهاز، أو أُزيل هذا الجهاز هناك)"),
    ("connection lost", "انقطع الاتصال"),
    ("{count} messages of {member} arrived in the last minute ({size}), far more than anyone types.", "وصلت {count} رسالة من {member} في الدقيقة الأخيرة ({size})، وهذا أكثر بكثير مما يكتبه أي شخص."),
    ("In the last minute the messages of {member} brought {size} to this disk, with the files this device fetches for them.", "في الدقيقة الأخيرة جلبت رسائل {member} إلى هذا القرص {size}، مع الملفات التي يجلبها هذا الجهاز لها."),
    ("At this pace this disk is full in {time}.", "بهذه الوتيرة يمتلئ هذا القرص خلال {time}."),
    ("this device's disk is full: {size} free, less than the {margin} Majlis keeps free, so nothing new is stored. What is sent from here is refused, and what colleagues send comes back by catch-up once there is room.", "قرص هذا الجهاز ممتلئ: المتاح {size}، أقل من {margin} التي يبقيها مجلس فارغة، فلا يُخزَّن شيء جديد. ما يُرسل من هنا يُرفض، وما يرسله الزملاء يعود بالمزامنة حين تتوفر المساحة."),
    ("this device's disk is nearly full: {size} free; below {margin} Majlis stores nothing new.", "قرص هذا الجهاز يكاد يمتلئ: المتاح {size}؛ وتحت {margin} لا يخزّن مجلس شيئا جديدا."),
    ("In the last minute {size} came from {member} (messages and the files this device fetches for them); at that pace no room is left in {time}.", "في الدقيقة الأخيرة وصل {size} من {member} (رسائل والملفات التي يجلبها هذا الجهاز لها)؛ وبهذه الوتيرة لا تبقى مساحة خلال {time}."),
    ("Free space on that disk, or move the data directory to a larger one: Majlis carries on by itself, with no restart.", "وفّروا مساحة على ذلك القرص، أو انقلوا مجلد البيانات إلى قرص أكبر: يستأنف مجلس عمله وحده، دون إعادة تشغيل."),
    ("Unless it is a bot of yours, an admin can revoke the device (`majlisd roster revoke --device {device}`) and erase what it sent (`majlisd erase --member {name}`).", "ما لم يكن روبوتا تابعا لكم، يستطيع أحد المشرفين إلغاء الجهاز (`majlisd roster revoke --device {device}`) ومحو ما أرسله (`majlisd erase --member {name}`)."),
    ("device {device} is of this org but not on this roster (version {version}).", "الجهاز {device} من هذه المؤسسة لكنه ليس في هذه القائمة (الإصدار {version})."),
    ("device {device} at {addresses} is of this org but not on this roster (version {version}).", "الجهاز {device} على {addresses} من هذه المؤسسة لكنه ليس في هذه القائمة (الإصدار {version})."),
    ("It tried to connect and was turned away.", "حاول الاتصال فرُدّ."),
    ("It answered at an address given to this node and was turned away.", "أجاب على عنوان أُعطي لهذه العقدة فرُدّ."),
    ("It announces itself.", "إنه يعلن عن نفسه."),
    ("A connected device holds a newer roster, which arrives in a moment.", "لدى جهاز متصل قائمة أحدث، تصل بعد لحظات."),
    ("If an admin has added it, this device's roster is out of date and cannot update: no connected device holds a newer one. Connect this device to one that does (an admin's device or a relay, e.g. with --peer). Otherwise an admin adds it (`majlisd roster add --device {device}`), once the code on its screen is the same.", "إن كان أحد المشرفين قد أضافه، فقائمة هذا الجهاز قديمة ولا يمكنها التحديث: لا يحمل أي جهاز متصل قائمة أحدث. صِل هذا الجهاز بجهاز يحملها (جهاز مشرف أو مُرحِّل، مثلا بـ --peer). وإلا فليضفه أحد المشرفين (`majlisd roster add --device {device}`) متى كان الرمز على شاشته هو نفسه."),
    ("It asks to join as {name}; its join code is {code}.", "يطلب الانضمام باسم {name}؛ رمز انضمامه {code}."),
    ("Its join code is {code}.", "رمز انضمامه {code}."),
    ("{count} device(s) of another Majlis organization (or a newer release) are on this network (at {addresses}): they are never shown here. If a colleague's device is among them, it joined another org: it must join this one with this org's invitation (`majlisd org join`)", "على هذه الشبكة {count} من أجهزة مؤسسة أخرى في مجلس (أو من إصدار أحدث) (على {addresses}): لا تظهر هنا أبدا. إن كان بينها جهاز أحد الزملاء فقد انضم إلى مؤسسة أخرى: عليه الانضمام إلى هذه بدعوة هذه المؤسسة (`majlisd org join`)"),
    ("every connected device was found by address or peer exchange, none over mDNS in this node's first 15 s: multicast does not get through here (a firewall, or a network that drops it), so devices new to this network need an address (--peer)", "وُجد كل جهاز متصل بعنوانه أو بتبادل النظراء، ولا شيء عبر mDNS في أول 15 ثانية من عمل هذه العقدة: البث المتعدد لا يمر هنا (جدار حماية، أو شبكة تُسقطه)، فالأجهزة الجديدة على هذه الشبكة تحتاج إلى عنوان (--peer)"),
    ("{count} message(s) were refused because their time was more than the allowed skew ahead of this device's clock (or before 2020): a sender's clock, or this one, is wrong; set both right (NTP)", "رُفضت {count} من الرسائل لأن وقتها يتقدم على ساعة هذا الجهاز بأكثر من الفارق المسموح (أو قبل 2020): ساعة أحد المرسلين، أو هذه الساعة، خاطئة؛ اضبطهما (NTP)"),
    ("{count} message(s) were refused as backdated (dated more than 5 min before their author's previous message): a member's client, or clock, is not to be trusted", "رُفضت {count} من الرسائل لأنها مؤرخة بتاريخ سابق (قبل رسالة كاتبها السابقة بأكثر من 5 دقائق): لا يوثق بعميل أحد الأعضاء أو بساعته"),
    ("{count} message(s) came from devices this roster does not list or does not allow in that channel: a removed device, or a peer whose roster differs from this one (compare roster versions)", "وصلت {count} من الرسائل من أجهزة لا تدرجها هذه القائمة أو لا تسمح لها بتلك القناة: جهاز أُزيل، أو جهاز قائمته تختلف عن هذه (قارن إصدارات القائمة)"),
    ("connected at {address} for {time}", "متصل على {address} منذ {time}"),
    ("connected at {address}", "متصل على {address}"),
    ("roster version {version} ({hash})", "إصدار القائمة {version} ({hash})"),
    ("roster version {version}", "إصدار القائمة {version}"),
    ("not connected ({count} dial(s)): {error}", "غير متصل ({count} من محاولات الاتصال): {error}"),
    ("not seen", "لم يُرَ"),
    ("seen at {addresses}, not a neighbour (mesh limit; reached through others)", "شوهد على {addresses}، وليس جارا (حد الشبكة؛ يُوصَل إليه عبر غيره)"),
    ("seen at {addresses}, not connected ({count} dial(s))", "شوهد على {addresses}، غير متصل ({count} من محاولات الاتصال)"),
    ("found by {ways}, last {time} ago", "وُجد عبر {ways}، آخر مرة قبل {time}"),
    ("found by {ways}", "وُجد عبر {ways}"),
    ("address", "عنوان"),
    ("peer exchange", "تبادل النظراء"),
    ("clock in step", "الساعة مضبوطة"),
    ("clock {sign}{time}", "الساعة {sign}{time}"),
    ("last message {time} ago", "آخر رسالة قبل {time}"),
    ("catching up ({count} requests)", "يلحق بالسجل ({count} من الطلبات)"),
    ("{count} of our messages still to reach it", "{count} من رسائلنا لم تصله بعد"),
    ("not on the roster (this org)", "ليس في القائمة (من هذه المؤسسة)"),
    ("not on the roster (another org)", "ليس في القائمة (من مؤسسة أخرى)"),
    ("at {addresses}", "على {addresses}"),
    ("turned away {time} ago", "رُدّ قبل {time}"),
    ("this device's identity is also announced from {address}", "هوية هذا الجهاز مُعلنة أيضا من {address}"),
    ("{n} s", "{n} ثانية"),
    ("{n} min", "{n} دقيقة"),
    ("{n} h", "{n} ساعة"),
    ("forever", "للأبد"),
    ("{n} days", "{n} يوم"),
    ("messages {messages}", "الرسائل {messages}"),
    ("messages {messages}, files {files}", "الرسائل {messages}، الملفات {files}"),
    ("org: {keep}", "المؤسسة: {keep}"),
    ("DMs: {keep}", "الرسائل المباشرة: {keep}"),
    ("members {names}", "الأعضاء {names}"),
    ("channels {names}", "القنوات {names}"),
    ("TAMPERED", "مُتلاعَب به"),
    ("the disk holding {path} is full ({free} bytes free; Majlis keeps {margin} free): nothing was written", "القرص الذي يحمل {path} ممتلئ ({free} بايت متاحة؛ يُبقي مجلس {margin} متاحة): لم يُكتب شيء"),
    ("not saved: the node stopped because the disk failed ({error}); every acknowledged message is on disk", "لم يُحفظ: توقفت العقدة لأن القرص تعطل ({error})؛ كل رسالة أُكّد استلامها موجودة على القرص"),
    ("{path} is in use by another Majlis process", "{path} تستخدمه عملية أخرى من مجلس"),
    ("{path}: {error}", "المسار {path}: {error}"),
    ("nothing is there", "لا شيء هناك"),
    ("permission denied", "لا إذن بذلك"),
    ("it exists already", "موجود من قبل"),
    ("it is a folder, not a file", "هذا مجلد وليس ملفا"),
    ("it is a file, not a folder", "هذا ملف وليس مجلدا"),
    ("the disk is read-only", "القرص للقراءة فقط"),
    ("the disk is full", "القرص ممتلئ"),
    ("Majlis: {sender} in #{channel}", "مجلس: {sender} في ‎#{channel}"),
    ("Majlis: {sender}", "مجلس: {sender}"),
    ("the folder is not empty", "المجلد ليس فارغا"),
    ("the name is not allowed there", "هذا الاسم غير مسموح به هناك"),
    ("another program listens on that port already (another Majlis node, perhaps)", "برنامج آخر يستمع على هذا المنفذ من قبل (ربما عقدة أخرى من مجلس)"),
    ("this machine has no such address (the network interface is down, or the address is another machine's)", "ليس لهذا الجهاز هذا العنوان (واجهة الشبكة معطلة، أو العنوان لجهاز آخر)"),
    ("not permitted (a port below 1024 needs privileges)", "غير مسموح (المنفذ الأقل من 1024 يحتاج إلى صلاحيات)"),
    ("no address after 5 s", "لا عنوان بعد 5 ثوانٍ"),
    ("the node has stopped", "توقفت العقدة"),
    ("this device is not on the org roster", "هذا الجهاز ليس في قائمة المؤسسة"),
    ("this device is in no organization yet", "هذا الجهاز ليس في أي مؤسسة بعد"),
    ("stop the other process, or let the running node carry out the command", "أوقف العملية الأخرى، أو دع العقدة العاملة تنفذ الأمر"),
    ("if the disk is full free space and retry; if the database is damaged, restore it from a backup on a relay, or set this device up afresh in a new data directory (its history comes back by catch-up)", "إن كان القرص ممتلئا فأفرغ مساحة وأعد المحاولة؛ وإن كانت قاعدة البيانات تالفة فاستعدها من نسخة احتياطية على مُرحِّل، أو أعد إعداد هذا الجهاز في مجلد بيانات جديد (يعود سجله بالمزامنة)"),
    ("check the path: nothing is there", "تحقق من المسار: لا شيء هناك"),
    ("check the permissions of the file and of the directories above it (a service runs as its own user)", "تحقق من أذونات الملف والمجلدات فوقه (تعمل الخدمة بمستخدمها الخاص)"),
    ("give a file, not a folder", "أعط ملفا لا مجلدا"),
    ("check that the disk has space and the directory is writable", "تحقق من وجود مساحة على القرص ومن أن المجلد قابل للكتابة"),
    ("free space on that disk; Majlis carries on by itself once there is room (no restart needed), and what peers sent meanwhile comes back by catch-up", "أفرغ مساحة على ذلك القرص؛ يتابع مجلس من تلقاء نفسه حين تتوفر المساحة (دون إعادة تشغيل)، وما أرسله الآخرون في الأثناء يعود بالمزامنة"),
    ("on a relay, restore the data directory from a backup; on a member's device, set it up afresh in a new data directory (init, join the org, an admin adds it and removes this one): the history comes back by catch-up from a relay or colleagues", "على المُرحِّل، استعد مجلد البيانات من نسخة احتياطية؛ وعلى جهاز العضو، أعد إعداده في مجلد بيانات جديد (init، ثم الانضمام إلى المؤسسة، ثم يضيفه أحد المشرفين ويزيل هذا): يعود السجل بالمزامنة من مُرحِّل أو من الزملاء"),
    ("upgrade Majlis to the release that wrote it or a later one; nothing was changed", "حدّث مجلس إلى الإصدار الذي كتبه أو إلى إصدار أحدث؛ لم يتغير شيء"),
    ("give this device's id to an admin, who adds it to the roster", "أعط معرّف هذا الجهاز لأحد المشرفين ليضيفه إلى القائمة"),
    ("found an organization, or join one with the org id an admin gives you", "أنشئ مؤسسة، أو انضم إلى واحدة بمعرّف المؤسسة الذي يعطيك إياه أحد المشرفين"),
    ("restart the node", "أعد تشغيل العقدة"),
    ("check the disk (dmesg, smartctl), then start the node again", "افحص القرص (dmesg، smartctl)، ثم شغّل العقدة من جديد"),
    ("admin", "مشرف"),
    ("member", "عضو"),
    ("relay", "مُرحِّل"),
    ("guest", "ضيف"),
    ("archive", "أرشيف"),
];

/// `en` in `lang`.
pub fn tr(lang: Lang, en: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Ar => AR.iter().find(|(k, _)| *k == en).map_or(en, |(_, v)| v),
    }
}

/// A node's error in `lang`: the failures a user meets whatever they did (a full or failing
/// disk, a stopped node, a device not or no longer in the org) in words of their language;
/// others, whose text names what was refused, by [`say`]: in the language where the text is
/// one of [`AR_SAID`]'s, else as the node says them.
pub fn say_error(lang: Lang, e: &majlis_core::Error) -> String {
    use majlis_core::Error as E;
    match e {
        E::DiskFull { path, free, margin } => tr_with(
            lang,
            "the disk holding {path} is full ({free} bytes free; Majlis keeps {margin} free): nothing was written",
            &[("path", path), ("free", &free.to_string()), ("margin", &margin.to_string())],
        ),
        E::DiskFailed(why) => tr_with(
            lang,
            "not saved: the node stopped because the disk failed ({error}); every acknowledged message is on disk",
            &[("error", why)],
        ),
        E::Busy { path } => tr_with(
            lang,
            "{path} is in use by another Majlis process",
            &[("path", path)],
        ),
        E::Stopped => tr(lang, "the node has stopped").to_string(),
        E::NotOnRoster => tr(lang, "this device is not on the org roster").to_string(),
        E::NoOrg => tr(lang, "this device is in no organization yet").to_string(),
        // The system's words for common failures; others as the system gave them.
        E::Io { path, source } if lang != Lang::En => {
            use std::io::ErrorKind as K;
            let why = match source.kind() {
                K::NotFound => tr(lang, "nothing is there").to_string(),
                K::PermissionDenied => tr(lang, "permission denied").to_string(),
                K::AlreadyExists => tr(lang, "it exists already").to_string(),
                K::IsADirectory => tr(lang, "it is a folder, not a file").to_string(),
                K::NotADirectory => tr(lang, "it is a file, not a folder").to_string(),
                K::ReadOnlyFilesystem => tr(lang, "the disk is read-only").to_string(),
                K::StorageFull | K::QuotaExceeded => tr(lang, "the disk is full").to_string(),
                K::DirectoryNotEmpty => tr(lang, "the folder is not empty").to_string(),
                K::InvalidFilename => tr(lang, "the name is not allowed there").to_string(),
                _ => source.to_string(),
            };
            let values = [("path", path.clone()), ("error", why)];
            fill_shown(lang, tr(lang, "{path}: {error}"), &values)
        }
        // The node's words on why it could not listen in `lang`; the system's bracketed
        // text after them, like the address, stays as it is (isolated, as a name is).
        E::Listen { addr, reason } if lang != Lang::En => {
            let isolated = |v: &str| format!("\u{2068}{v}\u{2069}");
            let reason = match majlis_core::diagnose::LISTEN_WORDS
                .iter()
                .find(|w| reason.starts_with(**w))
            {
                Some(w) => format!("{}{}", tr(lang, w), isolated(&reason[w.len()..])),
                None => isolated(reason),
            };
            let template = say(lang, "cannot listen on {addr}: {reason}");
            fill(&template, &[("addr", isolated(addr)), ("reason", reason)], false)
        }
        other => say(lang, &other.to_string()),
    }
}

/// What a node refuses and why, as core words it (for the CLI and the logs), with the
/// names it fills in: `(English template, Arabic)`. [`say`] matches a text against the
/// English and fills the Arabic. The `why`, `bad` and `kind` places hold a text that is
/// said again (a reason inside "roster rejected: …"); other places are names and ids, kept
/// as they are. The test below makes each from core itself, so a change of words there
/// fails here instead of leaving the Arabic app in English.
const AR_SAID: &[(&str, &str)] = &[
    // Opening the data directory and starting the node.
    (
        "{dir} is sealed by a passphrase and none was given",
        "{dir} مختوم بعبارة مرور ولم تُعطَ أي عبارة",
    ),
    (
        "{dir} would not be sealed (no passphrase and no OS keyring), and sealing is required",
        "{dir} لن يكون مختوما (لا عبارة مرور ولا حلقة مفاتيح للنظام)، والختم مطلوب",
    ),
    (
        "{dir} is not sealed (its data key is in {file}) and sealing is required",
        "{dir} غير مختوم (مفتاح بياناته في {file}) والختم مطلوب",
    ),
    (
        "{dir} is sealed by the OS keyring, which is not reachable (no session bus); log in to the desktop session that created it",
        "{dir} مختوم بحلقة مفاتيح النظام، ولا سبيل إليها (لا ناقل جلسة)؛ سجّل الدخول إلى جلسة سطح المكتب التي أنشأته",
    ),
    (
        "the OS keyring did not give the data key: {error}",
        "لم تُعطِ حلقة مفاتيح النظام مفتاح البيانات: {error}",
    ),
    ("wrong passphrase", "عبارة المرور خاطئة"),
    ("cannot listen on {addr}: {reason}", "لا يمكن الاستماع على {addr}: {reason}"),
    ("mDNS could not start: {error}", "تعذّر تشغيل اكتشاف الأجهزة بالبث المتعدد: {error}"),
    ("no device identity in {dir}", "لا هوية جهاز في {dir}"),
    ("{dir} already has a device identity", "في {dir} هوية جهاز من قبل"),
    ("this device already belongs to org {org}", "هذا الجهاز ينتمي من قبل إلى المؤسسة {org}"),
    ("no roster yet; nothing to export", "لا قائمة بعد؛ لا شيء يُصدَّر"),
    ("roster rejected: {why}", "رُفض تغيير قائمة المؤسسة: {why}"),
    ("message rejected: {why}", "رُفضت الرسالة: {why}"),
    ("channel '{name}' already exists", "القناة '{name}' موجودة من قبل"),
    (
        "channel '{old}' already exists, and '{name}' would differ from it only in case; pick another name",
        "القناة '{old}' موجودة من قبل، ولا يختلف '{name}' عنها إلا في حالة الأحرف؛ اختر اسمًا آخر",
    ),
    (
        "'{name}' is not a good channel name: {bad}; try '{fixed}'",
        "'{name}' ليس اسمًا مناسبًا لقناة: {bad}؛ جرّب '{fixed}'",
    ),
    ("'{name}' is not a good channel name: {bad}", "'{name}' ليس اسمًا مناسبًا لقناة: {bad}"),
    (
        "it starts with '#', which Majlis shows in front of every channel name",
        "يبدأ بـ '#' التي يعرضها مجلس أمام اسم كل قناة",
    ),
    ("it starts or ends with a space", "يبدأ أو ينتهي بمسافة"),
    ("'{name}' is not a good member name: {bad}", "'{name}' ليس اسمًا مناسبًا لعضو: {bad}"),
    ("it has nothing that can be seen", "ليس فيه شيء يُرى"),
    (
        "'{name}' is not a good member name: {bad}; try '{fixed}'",
        "'{name}' ليس اسمًا مناسبًا لعضو: {bad}؛ جرّب '{fixed}'",
    ),
    (
        "it holds a character that cannot be seen or that turns the text around ({code})",
        "فيه محرف لا يُرى أو يقلب اتجاه النص من حوله ({code})",
    ),
    (
        "the org has {count} channels, as many as members may create; an admin can add more",
        "في المؤسسة {count} قناة، وهو أقصى ما يُنشئه الأعضاء؛ يستطيع المشرف إضافة المزيد",
    ),
    (
        "'{name}' looks like the channel '{old}' already there; pick a name nobody could mistake for it",
        "'{name}' يشبه اسم القناة الموجودة '{old}'؛ اختر اسمًا لا يمكن أن يُخلط بينه وبينها",
    ),
    (
        "'{name}' looks like the member '{old}' already there; to add a device of theirs, write the name as it is, else pick a name nobody could mistake for theirs",
        "'{name}' يشبه اسم العضو الموجود '{old}'؛ لإضافة جهاز له اكتب اسمه كما هو، وإلا فاختر اسمًا لا يمكن أن يُخلط باسمه",
    ),
    // Who posts in a channel, as an admin sets it.
    (
        "'{name}' reads #{channel} and may not post in it: {why}; an admin can let you",
        "'{name}' يقرأ ‎#{channel} ولا يجوز له النشر فيها: {why}؛ يستطيع المشرف أن يأذن لك",
    ),
    ("nobody posts there now", "لا أحد ينشر فيها الآن"),
    ("only {names} posts there", "لا ينشر فيها إلا {names}"),
    ("only {names} post there", "لا ينشر فيها إلا {names}"),
    (
        "name at least one member who posts in #{channel}; to stop all posting there, archive it",
        "سمِّ عضوًا واحدًا على الأقل ينشر في ‎#{channel}؛ لإيقاف النشر فيها كليًا أرشفها",
    ),
    (
        "'{name}' does not read #{channel}, so cannot post in it; put them on it first",
        "'{name}' لا يقرأ ‎#{channel} فلا يستطيع النشر فيها؛ أضفه إليها أولًا",
    ),
    (
        "'{name}' is the org's {role}: it stores and serves what members post, and never posts",
        "'{name}' هو {role} المؤسسة: يخزّن ما ينشره الأعضاء ويقدّمه، ولا ينشر أبدًا",
    ),
    (
        "'{name}' is the org's {role}: it stores and never posts",
        "'{name}' هو {role} المؤسسة: يخزّن ولا ينشر أبدًا",
    ),
    (
        "who posts in #{channel} is already set that way; nothing to change",
        "من ينشر في ‎#{channel} محدد هكذا من قبل؛ لا شيء يتغير",
    ),
    (
        "every reader of #{channel} posts, and so replies, already; readers are let reply where only some post (set who posts first)",
        "كل من يقرأ ‎#{channel} ينشر فيها، فيرد، من قبل؛ يُؤذن للقراء بالرد حيث لا ينشر إلا بعضهم (حدّد من ينشر أولًا)",
    ),
    (
        "the readers of #{channel} already reply in its threads; nothing to change",
        "قراء ‎#{channel} يردون في سلاسلها من قبل؛ لا شيء يتغير",
    ),
    (
        "the readers of #{channel} do not reply in its threads; nothing to change",
        "قراء ‎#{channel} لا يردون في سلاسلها؛ لا شيء يتغير",
    ),
    (
        "in direct messages both post; only a channel's readers are let reply",
        "في الرسائل المباشرة ينشر الطرفان كلاهما؛ لا يُؤذن بالرد إلا لقراء القنوات",
    ),
    (
        "in direct messages both post; only a channel's posters are set",
        "في الرسائل المباشرة ينشر الطرفان كلاهما؛ لا يُحدَّد من ينشر إلا في القنوات",
    ),
    // A member's job title an admin sets.
    (
        "'{title}' is not a good job title for '{member}': {why}",
        "'{title}' ليس مسمى وظيفيًا مناسبًا لـ '{member}': {why}",
    ),
    ("a job title is 1-128 bytes", "المسمى الوظيفي من 1 إلى 128 بايت"),
    (
        "'{name}' already has the job title '{title}'; nothing to change",
        "لـ '{name}' المسمى الوظيفي '{title}' من قبل؛ لا شيء يتغير",
    ),
    (
        "'{name}' has no job title; nothing to change",
        "ليس لـ '{name}' مسمى وظيفي؛ لا شيء يتغير",
    ),
    // A member's full name an admin sets.
    (
        "'{full}' is not a good full name for '{member}': {why}",
        "'{full}' ليس اسمًا كاملًا مناسبًا لـ '{member}': {why}",
    ),
    ("a full name is 1-128 bytes", "الاسم الكامل من 1 إلى 128 بايت"),
    ("it holds a control character", "فيه محرف تحكم"),
    (
        "it starts or ends with a space; try '{fixed}'",
        "يبدأ أو ينتهي بمسافة؛ جرّب '{fixed}'",
    ),
    (
        "it starts with '@' or '#', which the views show in front of mentions and channels",
        "يبدأ بـ '@' أو '#' اللتين تظهران أمام الإشارات والقنوات",
    ),
    (
        "it is, or looks like, the member '{old}'; pick a name nobody could take for theirs",
        "هو اسم العضو '{old}' أو يشبهه؛ اختر اسمًا لا يمكن أن يُظن أنه له",
    ),
    (
        "it is, or looks like, '{other}', the full name of '{old}'; pick a name nobody could take for theirs",
        "هو '{other}'، الاسم الكامل لـ '{old}'، أو يشبهه؛ اختر اسمًا لا يمكن أن يُظن أنه له",
    ),
    (
        "'{name}' is already called '{full}'; nothing to change",
        "'{name}' يحمل الاسم '{full}' من قبل؛ لا شيء يتغير",
    ),
    (
        "'{name}' has no full name; nothing to change",
        "ليس لـ '{name}' اسم كامل؛ لا شيء يتغير",
    ),
    (
        "'{name}' is, or looks like, '{full}', the full name of '{old}'; to add a device of theirs, write '{old}', else pick a name nobody could take for theirs",
        "'{name}' هو '{full}'، الاسم الكامل لـ '{old}'، أو يشبهه؛ لإضافة جهاز له اكتب '{old}'، وإلا فاختر اسمًا لا يمكن أن يُظن أنه له",
    ),
    // A message for later, refused.
    ("that time has passed: send the message now", "مضى ذلك الوقت: أرسل الرسالة الآن"),
    ("a message is sent at most a year ahead", "تُرسل الرسالة بعد سنة على الأكثر"),
    (
        "{count} messages are waiting already; send or cancel some first",
        "{count} رسالة تنتظر من قبل؛ أرسل بعضها أو ألغه أولًا",
    ),
    (
        "no message {id} is waiting (`majlisd scheduled` lists them)",
        "لا رسالة {id} تنتظر (يسردها `majlisd scheduled`)",
    ),
    // A forward, refused.
    (
        "the file is not downloaded on this device yet: download it first (`majlisd get {id}`, or Download in the app), then forward it",
        "لم يُنزَّل الملف على هذا الجهاز بعد: نزّله أولًا (`majlisd get {id}` أو «تنزيل» في التطبيق) ثم أعد توجيهه",
    ),
    (
        "a forwarded message keeps its author's words: delete it and forward it again, or write your own",
        "الرسالة المُعاد توجيهها تبقى بكلمات كاتبها: احذفها وأعد توجيهها، أو اكتب رسالتك",
    ),
    // A reminder, refused.
    (
        "that time has passed: give a time ahead",
        "مضى ذلك الوقت: اختر وقتًا قادمًا",
    ),
    ("a reminder is at most a year ahead", "التذكير بعد سنة على الأكثر"),
    (
        "no reminder {id} is waiting (`majlisd reminders` lists them)",
        "لا تذكير {id} منتظرًا (يسردها `majlisd reminders`)",
    ),
    // A poll, a vote or a closing, refused.
    (
        "a poll's question is one line of 1 to 300 characters",
        "سؤال الاستطلاع سطر واحد من 1 إلى 300 محرف",
    ),
    (
        "a poll offers 2 to 12 options, not {count}",
        "يعرض الاستطلاع من 2 إلى 12 خيارًا، لا {count}",
    ),
    (
        "'{option}' is not an option: one line of 1 to 100 characters",
        "'{option}' ليس خيارًا: سطر واحد من 1 إلى 100 محرف",
    ),
    (
        "'{option}' is offered twice: each option once",
        "'{option}' معروض مرتين: كل خيار مرة واحدة",
    ),
    ("message {id} is not a poll", "الرسالة {id} ليست استطلاعًا"),
    (
        "this poll was closed by {member}: it takes no more votes",
        "أغلق {member} هذا الاستطلاع: لا يقبل أصواتًا أخرى",
    ),
    (
        "this poll has options 1 to {count}, not {choice}",
        "لهذا الاستطلاع الخيارات من 1 إلى {count}، لا {choice}",
    ),
    (
        "this poll takes one choice: pick one option",
        "يقبل هذا الاستطلاع اختيارًا واحدًا: اختر خيارًا واحدًا",
    ),
    ("this poll is already closed", "هذا الاستطلاع مغلق من قبل"),
    (
        "only {member} (who asked) or an admin can close this poll",
        "لا يغلق هذا الاستطلاع إلا {member} (صاحب السؤال) أو مشرف",
    ),
    (
        "a poll's question stays what people voted on: close it and ask again",
        "يبقى سؤال الاستطلاع كما صوّت عليه الناس: أغلقه واطرح السؤال من جديد",
    ),
    (
        "a poll is not forwarded: its votes stay where it was asked; ask it there",
        "لا يُعاد توجيه استطلاع: تبقى أصواته حيث طُرح؛ اطرحه هناك",
    ),
    // A member's status, refused.
    (
        "a status is at most 100 characters; this one has {count}",
        "الحالة 100 محرف على الأكثر؛ وفي هذه {count}",
    ),
    (
        "a status is one line, with no control characters",
        "الحالة سطر واحد بلا محارف تحكم",
    ),
    (
        "a status may not hold a character that cannot be seen or that turns the text around ({code})",
        "لا يجوز أن تحمل الحالة محرفًا لا يُرى أو يقلب اتجاه النص ({code})",
    ),
    (
        "a status does not start or end with a space; try '{fixed}'",
        "لا تبدأ الحالة بمسافة ولا تنتهي بها؛ جرّب '{fixed}'",
    ),
    (
        "a status ends after it is set; give a time ahead",
        "تنتهي الحالة بعد تعيينها؛ اختر وقتًا قادمًا",
    ),
    ("a cleared status has no end", "الحالة الممسوحة لا نهاية لها"),
    // Groups one mention reaches, as an admin sets them.
    (
        "'{name}' is not a good group name: {why}",
        "'{name}' ليس اسمًا مناسبًا لمجموعة: {why}",
    ),
    (
        "a group is mentioned as @name, so its name is 1-64 bytes of letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        "يُشار إلى المجموعة بـ ‎@الاسم، فاسمها من 1 إلى 64 بايت من الحروف والأرقام و'-' و'_' و'.'، أوله وآخره حرف أو رقم",
    ),
    (
        "@{group} already means something in a message; pick another",
        "‎@{group} لها معنى في الرسائل من قبل؛ اختر غيرها",
    ),
    (
        "it is, or looks like, the name of member '{old}'; a mention of it must not be taken for theirs",
        "هو اسم العضو '{old}' أو يشبهه؛ ولا يجوز أن تُحسب الإشارة إليه إشارة إلى العضو",
    ),
    (
        "it is, or looks like, the group '{old}' already there",
        "هو اسم المجموعة الموجودة '{old}' أو يشبهه",
    ),
    ("no group named '{name}'", "لا توجد مجموعة باسم '{name}'"),
    (
        "no group named '{name}'; groups: {list}",
        "لا توجد مجموعة باسم '{name}'؛ المجموعات: {list}",
    ),
    (
        "name at least one member of @{group}; to delete the group, say so",
        "سمِّ عضوًا واحدًا على الأقل في ‎@{group}؛ ولحذف المجموعة اطلب حذفها",
    ),
    (
        "'{name}' is the org's {role}: it reads no mentions",
        "'{name}' هو {role} المؤسسة: لا يقرأ الإشارات",
    ),
    (
        "everyone in @{group} is that way already; nothing to change",
        "كل من في ‎@{group} على هذه الحال من قبل؛ لا شيء يتغير",
    ),
    (
        "@{group} already has exactly these members; nothing to change",
        "في ‎@{group} هؤلاء الأعضاء بالضبط من قبل؛ لا شيء يتغير",
    ),
    (
        "'{name}' is, or looks like, the group '{old}': a mention of them would reach the group; pick another name",
        "'{name}' هو اسم المجموعة '{old}' أو يشبهه: الإشارة إليه ستصل إلى المجموعة؛ اختر اسمًا آخر",
    ),
    (
        "'{name}' is not a valid {kind} name: 1-64 bytes, no commas, no control characters, not starting with '@'",
        "'{name}' ليس اسم {kind} صالحًا: من 1 إلى 64 بايت، بلا فواصل ولا محارف تحكم، ولا يبدأ بـ '@'",
    ),
    ("channel", "قناة"),
    (
        "member '{old}' already exists, and '{name}' would differ from them only in case; to add a device of theirs, write the name as it is",
        "العضو '{old}' موجود من قبل، ولا يختلف '{name}' عنه إلا في حالة الأحرف؛ لإضافة جهاز له، اكتب الاسم كما هو",
    ),
    ("no member named '{name}'", "لا يوجد عضو باسم '{name}'"),
    (
        "no member named '{name}'; erase a member before removing them",
        "لا يوجد عضو باسم '{name}'؛ امحُ بيانات العضو قبل إزالته",
    ),
    ("no channel named '{name}'; channels: {list}", "لا توجد قناة باسم '{name}'؛ القنوات: {list}"),
    (
        "no channel '{name}'; channels: {list} (or @NAME for a direct message)",
        "لا توجد قناة '{name}'؛ القنوات: {list} (أو ‎@الاسم لرسالة مباشرة)",
    ),
    (
        "the roster must keep at least one admin with a device",
        "يجب أن تُبقي قائمة المؤسسة مشرفًا واحدًا على الأقل له جهاز",
    ),
    (
        "the policy is already set that way; nothing to change",
        "السياسة مضبوطة هكذا من قبل؛ لا شيء يتغير",
    ),
    (
        "the file policy is already set that way; nothing to change",
        "سياسة الملفات مضبوطة هكذا من قبل؛ لا شيء يتغير",
    ),
    (
        "retention is already set that way; nothing to change",
        "مدة الاحتفاظ مضبوطة هكذا من قبل؛ لا شيء يتغير",
    ),
    (
        "read receipts are already set that way; nothing to change",
        "إشعارات القراءة مضبوطة هكذا من قبل؛ لا شيء يتغير",
    ),
    (
        "retention is at least one day; leave it out to keep forever",
        "مدة الاحتفاظ يوم واحد على الأقل؛ اتركها فارغة للاحتفاظ إلى الأبد",
    ),
    ("device {device} already belongs to '{name}'", "الجهاز {device} يخص '{name}' من قبل"),
    (
        "'{name}' already has device {device}; nothing to change",
        "لدى '{name}' الجهاز {device} من قبل؛ لا شيء يتغير",
    ),
    ("device {device} is not on the roster", "الجهاز {device} ليس في قائمة المؤسسة"),
    (
        "'{name}' is already a member of #{channel}; nothing to change",
        "'{name}' عضو في ‎#{channel} من قبل؛ لا شيء يتغير",
    ),
    (
        "'{name}' is not a member of #{channel}; nothing to change",
        "'{name}' ليس عضوًا في ‎#{channel}؛ لا شيء يتغير",
    ),
    (
        "#{channel} is open to every member; to make it private, name everyone who stays (`--only`)",
        "القناة ‎#{channel} مفتوحة لكل الأعضاء؛ لجعلها خاصة، سمِّ كل من يبقى فيها",
    ),
    (
        "#{channel} is already open to every member; nothing to change",
        "القناة ‎#{channel} مفتوحة لكل الأعضاء من قبل؛ لا شيء يتغير",
    ),
    (
        "#{channel} already has exactly these members; nothing to change",
        "لدى ‎#{channel} هؤلاء الأعضاء بالضبط من قبل؛ لا شيء يتغير",
    ),
    (
        "#{channel} would have no members left; keep at least one",
        "لن يبقى في ‎#{channel} أي عضو؛ أبقِ واحدًا على الأقل",
    ),
    (
        "#{channel} is archived: its history stays readable and searchable, and nothing more can be posted in it; an admin can bring it back",
        "القناة ‎#{channel} مؤرشفة: يبقى تاريخها مقروءًا وقابلًا للبحث، ولا يمكن نشر شيء آخر فيها؛ يمكن لمشرف إعادتها",
    ),
    (
        "no channel #{channel} on the roster (direct messages cannot be left)",
        "لا توجد قناة ‎#{channel} في قائمة المؤسسة (لا يمكن مغادرة الرسائل المباشرة)",
    ),
    (
        "#{channel} is restricted to its members: an admin adds or removes them",
        "القناة ‎#{channel} مقصورة على أعضائها: يضيفهم مشرف أو يزيلهم",
    ),
    ("you have already joined #{channel}", "انضممت إلى ‎#{channel} من قبل"),
    ("you have already left #{channel}", "غادرت ‎#{channel} من قبل"),
    (
        "direct messages are not archived; only channels are",
        "لا تؤرشف الرسائل المباشرة؛ تؤرشف القنوات وحدها",
    ),
    (
        "#{channel} is already archived; nothing to change",
        "القناة ‎#{channel} مؤرشفة من قبل؛ لا شيء يتغير",
    ),
    (
        "#{channel} is not archived; nothing to change",
        "القناة ‎#{channel} ليست مؤرشفة؛ لا شيء يتغير",
    ),
    (
        "direct messages are not renamed; only channels are",
        "لا يعاد تسمية الرسائل المباشرة؛ تعاد تسمية القنوات وحدها",
    ),
    (
        "the channel is already called #{to}; nothing to change",
        "اسم القناة ‎#{to} من قبل؛ لا شيء يتغير",
    ),
    (
        "only admins can change the roster (members may create channels if the org policy allows); ask an admin",
        "لا يغيّر قائمة المؤسسة إلا المشرفون (وللأعضاء إنشاء القنوات إن سمحت سياسة المؤسسة)؛ اطلب ذلك من مشرف",
    ),
    (
        "'{id}' is not a device id (the device shows its id in its settings)",
        "'{id}' ليس معرّف جهاز (يعرض الجهاز معرّفه في إعداداته)",
    ),
    (
        "'{id}' is not an org id (an admin of the org can show it)",
        "'{id}' ليس معرّف مؤسسة (يستطيع مشرف المؤسسة أن يعرضه)",
    ),
    (
        "'{link}' is not a join link (they start with majlis:join/)",
        "'{link}' ليس رابط انضمام (تبدأ روابط الانضمام بـ majlis:join/)",
    ),
    (
        "'{part}' in the join link is not peer=ADDRESS:PORT; ask for the link again",
        "'{part}' في رابط الانضمام ليس peer=العنوان:المنفذ؛ اطلب الرابط مرة أخرى",
    ),
    (
        "'{peer}' in the join link is not ADDRESS:PORT; ask for the link again",
        "'{peer}' في رابط الانضمام ليس العنوان:المنفذ؛ اطلب الرابط مرة أخرى",
    ),
    (
        "the join link names more than 8 addresses; ask for the link again",
        "يذكر رابط الانضمام أكثر من 8 عناوين؛ اطلب الرابط مرة أخرى",
    ),
    (
        "'{member}' may not post in '{channel}'",
        "لا يحق لـ '{member}' أن يكتب في '{channel}'",
    ),
    (
        "'{member}' may not post in {channel}: {why}",
        "لا يحق لـ '{member}' أن يكتب في {channel}: {why}",
    ),
    (
        "it is open to {names} only; an admin can add you to it",
        "هي مفتوحة لـ {names} فقط؛ يستطيع مشرف أن يضيفك إليها",
    ),
    (
        "a guest reads only the channels that name them; an admin can add you to one",
        "لا يقرأ الضيف إلا القنوات التي تسمّيه؛ يستطيع مشرف أن يضيفك إلى إحداها",
    ),
    (
        "it is the direct conversation of {a} and {b}",
        "هي المحادثة المباشرة بين {a} و{b}",
    ),
    (
        "it is {name}'s notes, which only their own devices read",
        "هي ملاحظات {name}، ولا تقرؤها إلا أجهزته",
    ),
    (
        "a direct conversation has at most {max} members, you among them; for more, an admin makes a channel",
        "تضم المحادثة المباشرة {max} أعضاء على الأكثر، وأنت منهم؛ ولأكثر من ذلك ينشئ مشرف قناة",
    ),
    (
        "a message needs some text (to take one of yours back, delete it)",
        "الرسالة تحتاج إلى نص (لسحب رسالة لك، احذفها)",
    ),
    (
        "the org allows files up to {max} bytes; this one is {size}",
        "تسمح المؤسسة بملفات حتى {max} بايت؛ وهذا الملف {size} بايت",
    ),
    (
        "the org allows only these file types: {types}; this one is {mime}",
        "لا تسمح المؤسسة إلا بهذه الأنواع من الملفات: {types}؛ وهذا الملف {mime}",
    ),
    (
        "'{text}' is not a date: write YYYY-MM-DD (e.g. 2026-03-01)",
        "'{text}' ليس تاريخًا: اكتب YYYY-MM-DD (مثل 2026-03-01)",
    ),
    (
        "has:{other}: use has:file, has:link or has:poll",
        "has:{other}: استخدم has:file أو has:link أو has:poll",
    ),
    (
        "unknown filter '{other}:': use from:, in:, has:, before:, after:, on:, mentions: or is:saved",
        "مرشّح غير معروف '{other}:': استخدم from: أو in: أو has: أو before: أو after: أو on: أو mentions: أو is:saved",
    ),
    (
        "type words to search for, or a filter such as from:NAME",
        "اكتب كلمات للبحث عنها، أو مرشّحًا مثل from:الاسم",
    ),
    (
        "in:@{name}: no direct messages with '{name}'",
        "in:@{name}: لا رسائل مباشرة مع '{name}'",
    ),
];

/// Places whose text is said again in the language (a reason, a kind of name).
const SAID_AGAIN: &[&str] = &["why", "bad", "kind", "role"];

/// A text a node wrote (an error's message), in `lang`: the Arabic of the [`AR_SAID`]
/// template it matches, or of the [`AR`] entry it is, else as written.
pub fn say(lang: Lang, text: &str) -> String {
    if lang == Lang::En {
        return text.to_string();
    }
    if let Some((_, ar)) = AR.iter().chain(AR_SAID).find(|(en, _)| *en == text) {
        return ar.to_string();
    }
    for (en, ar) in AR_SAID.iter().filter(|(en, _)| en.contains('{')) {
        if let Some(values) = capture(en, text) {
            let values: Vec<(&str, String)> = values
                .into_iter()
                .map(|(n, v)| match SAID_AGAIN.contains(&n) {
                    true => (n, say(lang, v)),
                    false => (n, v.to_string()),
                })
                .collect();
            return fill_shown(lang, ar, &values);
        }
    }
    text.to_string()
}

/// The values of `template`'s `{name}` places if `text` is `template` filled in. A value
/// is never empty; where a literal after a place occurs more than once in `text`, each
/// split is tried (a name may contain the words that follow it).
fn capture<'t>(template: &'t str, text: &'t str) -> Option<Vec<(&'t str, &'t str)>> {
    let Some(open) = template.find('{') else {
        return (template == text).then(Vec::new);
    };
    let rest = text.strip_prefix(&template[..open])?;
    let close = open + template[open..].find('}')?;
    let name = &template[open + 1..close];
    let after = &template[close + 1..];
    let lit_end = after.find('{').unwrap_or(after.len());
    let lit = &after[..lit_end];
    if lit.is_empty() {
        // Two places in a row, or the last place: the last takes the rest.
        return (lit_end == after.len() && !rest.is_empty()).then(|| vec![(name, rest)]);
    }
    rest.match_indices(lit)
        .filter(|(i, _)| *i > 0)
        .find_map(|(i, _)| {
            let mut more = capture(after, &rest[i..])?;
            more.insert(0, (name, &rest[..i]));
            Some(more)
        })
}

/// `en` in `lang`, each `{name}` in it replaced by its value: after translating, so that a
/// translation puts the values where its own grammar wants them.
pub fn tr_with(lang: Lang, en: &'static str, args: &[(&str, &str)]) -> String {
    fill(tr(lang, en), args, false)
}

/// [`tr_with`] for the screen: in a right-to-left language each value is a bidi isolate
/// (FSI … PDI), so a path, an id or a list of Latin names keeps its own order inside the
/// sentence instead of being split around it (`text::visual_line` drops the marks).
pub fn tr_shown(lang: Lang, en: &'static str, args: &[(&str, &str)]) -> String {
    fill_shown(lang, tr(lang, en), args)
}

/// `template` (already in `lang`) with its `{name}` places filled as [`tr_shown`] does.
pub fn fill_shown<V: AsRef<str>>(lang: Lang, template: &str, args: &[(&str, V)]) -> String {
    fill(template, args, lang.rtl())
}

/// `template` with each `{name}` replaced by its value, isolated if `isolate` (in one pass:
/// a value is never filled again, see `diagnose::fill_places`).
fn fill<V: AsRef<str>>(template: &str, args: &[(&str, V)], isolate: bool) -> String {
    majlis_core::diagnose::fill_places(template, |name| {
        let (_, v) = args.iter().find(|(n, _)| *n == name)?;
        Some(match isolate {
            true => format!("\u{2068}{}\u{2069}", v.as_ref()),
            false => v.as_ref().to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arabic_entry_is_arabic_and_unique() {
        let mut keys = std::collections::HashSet::new();
        for (en, ar) in AR.iter().chain(AR_SAID) {
            assert!(keys.insert(en), "{en} twice");
            assert!(crate::text::has_rtl(ar), "{en} has no Arabic translation");
        }
        assert_eq!(tr(Lang::Ar, "Send"), "إرسال");
        assert_eq!(tr(Lang::Ar, "not translated"), "not translated");
    }

    /// What the node refuses, made by core itself (so a change of its words fails here),
    /// reads in Arabic: nothing English is left but the names filled in.
    #[test]
    fn what_the_node_refuses_is_said_in_arabic() {
        use majlis_core::conversation::check_join;
        use majlis_core::roster::{FilePolicy, MembersChange, Policy};
        use majlis_core::{DeviceKey, Error as E, OrgKey, Roster, RosterChange as C};
        let (org, amina) = (OrgKey::generate(), DeviceKey::generate());
        let r = Roster::genesis(&org, "acme", "amina", amina.id(), 1);
        let refused = |c: C| E::Roster(r.next([0; 32], &c, 2).unwrap_err());
        let add = |name: &str| C::AddMember {
            name: name.into(),
            device: DeviceKey::generate().id(),
            role: None,
        };
        let create = |name: &str| C::CreateChannel {
            name: name.into(),
            members: None,
        };
        let members = |name: &str, change| C::ChannelMembers {
            name: name.into(),
            change,
        };
        let mut errors = vec![
            refused(create("#ops")),
            refused(create(" ops")),
            refused(create("General")),
            refused(create("general")),
            refused(create("a,b")),
            refused(create("generaI")),
            refused(create("\u{200D}")),
            refused(add("\u{200C}")),
            {
                // A member's new channel past the bound, as the member's own node says it.
                use majlis_core::roster::{authorize, Channel, RosterSigner, VerifiedRoster};
                let mut full = r.clone();
                full.policy.members_create_channels = true;
                let bilal = DeviceKey::generate();
                full.members.push(majlis_core::roster::Member {
                    name: "bilal".into(),
                    role: majlis_core::Role::Member,
                    devices: vec![bilal.id()],
                });
                full.channels = (0..majlis_core::roster::MAX_MEMBER_CHANNELS)
                    .map(|i| Channel {
                        name: format!("c{i}"),
                        members: None,
                    })
                    .collect();
                let prev = VerifiedRoster::sign(full.clone(), RosterSigner::Root(&org));
                let mut more = full.next(prev.hash, &create("one more"), 3).unwrap();
                more.issued_at = 3;
                let cand = VerifiedRoster::sign(more, RosterSigner::Device(&bilal));
                E::Invalid(match authorize(&cand, Some(&prev)).unwrap_err() {
                    majlis_core::roster::RosterError::Rule(why) => why,
                    other => other.to_string(),
                })
            },
            refused(create("\u{202E}spo")),
            refused(add("Αmina")), // a Greek capital alpha
            refused(add("chen\u{200B}")),
            refused(add(" chen")),
            refused(add("Amina")),
            refused(members("nope", MembersChange::Set(None))),
            refused(members("general", MembersChange::Add(vec!["amina".into()]))),
            refused(members("general", MembersChange::Set(None))),
            refused(C::SetPolicy {
                policy: Policy::default(),
            }),
            refused(C::AddMember {
                name: "bilal".into(),
                device: amina.id(),
                role: None,
            }),
            refused(C::AddMember {
                name: "amina".into(),
                device: amina.id(),
                role: None,
            }),
            refused(C::RemoveMember {
                name: "nobody".into(),
            }),
            "xyz".parse::<majlis_core::DeviceId>().unwrap_err(),
            "xyz".parse::<majlis_core::OrgId>().unwrap_err(),
            refused(add("a,b")),
            E::Invalid(r.no_channel("nope", None)),
            refused(C::ArchiveChannel {
                name: "general".into(),
                archived: false,
            }),
            E::Message(majlis_core::message::Reject::Archived("general".into())),
            refused(C::ArchiveChannel {
                name: "@bilal".into(),
                archived: true,
            }),
            refused(C::RenameChannel {
                name: "@bilal".into(),
                to: "x".into(),
            }),
            refused(C::RenameChannel {
                name: "general".into(),
                to: "general".into(),
            }),
            check_join("nope", None, false, false).unwrap_err(),
            check_join("board", Some(false), false, false).unwrap_err(),
            check_join("general", Some(true), false, true).unwrap_err(),
            check_join("general", Some(true), true, false).unwrap_err(),
            {
                let archive = C::ArchiveChannel {
                    name: "general".into(),
                    archived: true,
                };
                let a = r.next([0; 32], &archive, 2).unwrap();
                E::Roster(a.next([0; 32], &archive, 3).unwrap_err())
            },
            E::Message(majlis_core::message::Reject::NotAllowed {
                member: "gus".into(),
                channel: "board".into(),
            }),
        ];
        // Why a post is refused, as the sender's own node says it.
        {
            use majlis_core::roster::{Channel, Member};
            let mut x = r.clone();
            let member = |name: &str, role| Member {
                name: name.into(),
                role,
                devices: vec![DeviceKey::generate().id()],
            };
            let (bilal, gus) = (
                member("bilal", majlis_core::Role::Member),
                member("gus", majlis_core::Role::Guest),
            );
            x.members.extend([bilal.clone(), gus.clone()]);
            x.channels.push(Channel {
                name: "board".into(),
                members: Some(vec!["amina".into()]),
            });
            errors.extend(
                [(&bilal, "board"), (&gus, "general"), (&gus, "@amina,bilal")]
                    .map(|(m, c)| E::Denied(x.why_not_post(m, c))),
            );
        }
        // A poll, refused as core checks it.
        {
            use majlis_core::conversation::check_poll;
            let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            errors.extend([
                check_poll("", &o(&["a", "b"])).unwrap_err(),
                check_poll("Lunch?", &o(&["a"])).unwrap_err(),
                check_poll("Lunch?", &o(&["a", " b"])).unwrap_err(),
                check_poll("Lunch?", &o(&["Pizza", "pizza"])).unwrap_err(),
            ]);
        }
        errors.extend([
            // Opening the data directory, starting the node, exporting.
            E::NeedPassphrase {
                dir: "/data".into(),
            },
            E::SealingUnavailable {
                dir: "/data".into(),
            },
            E::Listen {
                addr: "/ip4/0.0.0.0/tcp/7441".into(),
                reason: majlis_core::diagnose::listen_reason("Address already in use (os error 98)"),
            },
            E::Mdns("no multicast interface".into()),
            E::NoIdentity {
                dir: "/data".into(),
            },
            E::HasIdentity {
                dir: "/data".into(),
            },
            E::InOrg { org: "acme".into() },
            {
                let dir = tempfile::tempdir().unwrap();
                let p = majlis_core::Profile::init(dir.path(), "amina").unwrap();
                p.export(&majlis_core::export::Spec {
                    scope: majlis_core::export::Scope::Member("amina".into()),
                    from: None,
                    to: None,
                    format: majlis_core::export::Format::Json,
                    out: dir.path().join("out"),
                })
                .unwrap_err()
            },
            E::io(
                std::path::Path::new("/home/amina/Downloads/x"),
                std::io::ErrorKind::PermissionDenied.into(),
            ),
            E::io(
                std::path::Path::new("/x"),
                std::io::ErrorKind::NotFound.into(),
            ),
            {
                use majlis_core::seal;
                let sealed = seal::seal_with_passphrase(b"right", b"k", b"key").unwrap();
                seal::open_with_passphrase(b"wrong", b"k", &sealed).unwrap_err()
            },
            {
                let strict = majlis_core::seal::Unlock {
                    require_sealed: true,
                    ..Default::default()
                };
                let data = std::path::Path::new("/data");
                majlis_core::seal::open(data, majlis_core::seal::Sealing::File, &strict)
                    .unwrap_err()
            },
            // The keyring's words, as seal.rs writes them (no keyring to fail here).
            E::NotReady("/data is sealed by the OS keyring, which is not reachable (no session bus); log in to the desktop session that created it".into()),
            E::NotReady("the OS keyring did not give the data key: no secret service".into()),
        ]);
        // Full names an admin sets, refused.
        {
            let mut x = r.clone();
            x.members.push(majlis_core::roster::Member {
                name: "chen".into(),
                role: majlis_core::Role::Member,
                devices: vec![DeviceKey::generate().id()],
            });
            x.full_names.push(("amina".into(), "Amina Haddad".into()));
            let name = |full: Option<&str>| C::SetFullName {
                member: "chen".into(),
                full_name: full.map(str::to_string),
            };
            let changes = [
                name(Some(&"w".repeat(129))),
                name(Some("Chen\u{7}")),
                name(Some("Chen\u{200B}Wei")),
                name(Some("\u{3000}")),
                name(Some(" Chen")),
                name(Some("@chen")),
                name(Some("Amina")),
                name(Some("amina haddad")),
                name(None),
                C::SetFullName {
                    member: "amina".into(),
                    full_name: Some("Amina Haddad".into()),
                },
                C::SetFullName {
                    member: "nobody".into(),
                    full_name: None,
                },
                add("Amina Haddad"),
            ];
            errors.extend(changes.map(|c| E::Roster(x.next([0; 32], &c, 2).unwrap_err())));
            // Who posts in a channel, refused, and why a reader may not post there.
            x.full_names.clear();
            x.channels.push(majlis_core::roster::Channel {
                name: "board".into(),
                members: Some(vec!["amina".into()]),
            });
            let posters = |name: &str, p: Option<Vec<String>>| C::ChannelPosters {
                name: name.into(),
                posters: p,
            };
            let chen = x.member("chen").unwrap().clone();
            for p in [
                vec![],
                vec!["amina".into()],
                vec!["amina".into(), "amina".into()],
            ] {
                let mut y = x.clone();
                y.posters = vec![("general".into(), p)];
                errors.push(E::Denied(y.why_not_post(&chen, "general")));
            }
            let relay = majlis_core::roster::Member {
                name: "vault".into(),
                role: majlis_core::Role::Relay,
                devices: vec![DeviceKey::generate().id()],
            };
            x.members.push(relay.clone());
            errors.push(E::Denied(x.why_not_post(&relay, "general")));
            let mut y = x.clone();
            y.posters = vec![("general".into(), vec!["amina".into()])];
            errors.extend(
                [
                    posters("general", Some(vec![])),
                    posters("board", Some(vec!["chen".into()])),
                    posters("general", Some(vec!["vault".into()])),
                    posters("general", Some(vec!["amina".into()])),
                    posters("@chen", None),
                ]
                .map(|c| E::Roster(y.next([0; 32], &c, 2).unwrap_err())),
            );
            // Letting readers reply, refused.
            let replies = |name: &str, on| C::ChannelReplies {
                name: name.into(),
                on,
            };
            let mut z = y.clone();
            z.replies = vec!["general".into()];
            errors.extend([
                E::Roster(x.next([0; 32], &replies("general", true), 2).unwrap_err()),
                E::Roster(y.next([0; 32], &replies("general", false), 2).unwrap_err()),
                E::Roster(z.next([0; 32], &replies("general", true), 2).unwrap_err()),
                E::Roster(z.next([0; 32], &replies("@chen", true), 2).unwrap_err()),
            ]);
        }
        // A status, refused.
        {
            use majlis_core::status::{check, Status};
            let st = |text: &str, until| Status {
                text: text.into(),
                until,
            };
            for bad in [
                st(&"x".repeat(101), None),
                st("a\nb", None),
                st("out\u{202E}ffo", None),
                st(" out", None),
                st("out", Some(1)),
                st("", Some(9)),
            ] {
                errors.push(E::Invalid(check(&bad, 5).unwrap_err()));
            }
        }
        // Groups an admin sets, refused.
        {
            let mut x = r.clone();
            x.groups.push(("hr".into(), vec!["amina".into()]));
            x.members.push(majlis_core::roster::Member {
                name: "vault".into(),
                role: majlis_core::Role::Relay,
                devices: vec![DeviceKey::generate().id()],
            });
            let group = |name: &str, m: Option<&[&str]>| C::SetGroup {
                name: name.into(),
                members: m.map(|m| m.iter().map(|n| n.to_string()).collect()),
            };
            let changes = [
                group("h r", Some(&["amina"])),
                group("here", Some(&["amina"])),
                group("Amina", Some(&["amina"])),
                group("\u{4bb}r", Some(&["amina"])),
                group("sales", None),
                group("sales", Some(&[])),
                group("sales", Some(&["vault"])),
                group("HR", Some(&["amina"])),
                add("HR"),
            ];
            errors.extend(changes.map(|c| E::Roster(x.next([0; 32], &c, 2).unwrap_err())));
            x.channels.push(majlis_core::roster::Channel {
                name: "board".into(),
                members: Some(vec!["amina".into()]),
            });
            let by_group = C::ChannelMembers {
                name: "board".into(),
                change: majlis_core::roster::MembersChange::Add(vec!["@hr".into()]),
            };
            errors.push(E::Roster(x.next([0; 32], &by_group, 2).unwrap_err()));
            x.groups.clear();
            errors.push(E::Roster(
                x.next([0; 32], &group("hr", None), 2).unwrap_err(),
            ));
        }
        let files = FilePolicy {
            max_bytes: Some(10),
            types: vec!["image/*".into()],
            ..FilePolicy::default()
        };
        errors.extend(
            [files.refuse(20, "image/png"), files.refuse(5, "text/plain")]
                .map(|why| E::Denied(why.expect("refused"))),
        );
        for e in &errors {
            let (en, ar) = (say_error(Lang::En, e), say_error(Lang::Ar, e));
            assert_eq!(en, e.to_string());
            let left = without_names(&ar);
            assert!(
                crate::text::has_rtl(&ar) && !left.chars().any(|c| c.is_ascii_alphabetic()),
                "not said in Arabic: {en}\n  → {ar}"
            );
        }
        // Search filters keep their syntax (from:, has:file), the rest is Arabic.
        let parse = majlis_core::search::query::parse;
        for q in ["before:yesterday", "has:pdf", "frm:amina"] {
            let en = parse(q).unwrap_err();
            let ar = say(Lang::Ar, &en);
            assert!(crate::text::has_rtl(&ar) && ar != en, "{en}");
        }
        // A name that holds the words after it is still split right.
        let e = E::Roster(majlis_core::roster::RosterError::Rule(
            "channel 'x' already exists' already exists".into(),
        ));
        assert!(say_error(Lang::Ar, &e).contains("x' already exists"));
        assert_eq!(say(Lang::Ar, "something else"), "something else");
        // A role is said in the language too.
        let ar = say(
            Lang::Ar,
            "'vault' is the org's relay: it stores and never posts",
        );
        assert!(ar.contains("مُرحِّل"), "{ar}");
        // Why a listen failed: the node's words in Arabic, the system's text kept (the
        // loop above drops filled-in values, so it cannot tell).
        let system = "Cannot assign requested address (os error 99)";
        let e = E::Listen {
            addr: "/ip4/10.9.9.9/tcp/7441".into(),
            reason: majlis_core::diagnose::listen_reason(system),
        };
        let ar = say_error(Lang::Ar, &e);
        assert!(
            ar.contains("ليس لهذا الجهاز هذا العنوان") && ar.contains(&format!("[{system}]")),
            "{ar}"
        );
        // I/O failures of the kinds the app words itself.
        use std::io::ErrorKind as K;
        for k in [
            K::NotADirectory,
            K::ReadOnlyFilesystem,
            K::StorageFull,
            K::DirectoryNotEmpty,
        ] {
            let ar = say_error(Lang::Ar, &E::io(std::path::Path::new("/x"), k.into()));
            assert!(
                !without_names(&ar).chars().any(|c| c.is_ascii_alphabetic()),
                "{k:?}: {ar}"
            );
        }
    }

    /// `text` without the names filled into it (Latin values inside bidi isolates).
    fn without_names(text: &str) -> String {
        let mut s = text.to_string();
        while let Some(close) = s.find('\u{2069}') {
            let open = s[..close].rfind('\u{2068}').expect("isolates pair up");
            let inner = s[open + 3..close].to_string();
            let keep = match crate::text::has_rtl(&inner) {
                true => inner,
                false => String::new(),
            };
            s.replace_range(open..close + 3, &keep);
        }
        s
    }

    /// The `{name}` places of a text, in order of name.
    fn places(text: &str) -> Vec<&str> {
        let mut v: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(n, _)| n))
            .collect();
        v.sort_unstable();
        v
    }

    /// The errors said in the user's language read in English exactly as the node writes
    /// them (`doctor`, the CLI), so the two never drift apart; in Arabic they are Arabic.
    #[test]
    fn a_nodes_errors_in_english_are_the_nodes_words() {
        use majlis_core::Error as E;
        let errors = [
            E::DiskFull {
                path: "/data".into(),
                free: 10,
                margin: 64,
            },
            E::DiskFailed("EIO".into()),
            E::Busy {
                path: "/data".into(),
            },
            E::Stopped,
            E::NotOnRoster,
            E::NoOrg,
        ];
        for e in &errors {
            assert_eq!(say_error(Lang::En, e), e.to_string());
            assert!(crate::text::has_rtl(&say_error(Lang::Ar, e)), "{e}");
        }
        // Every hint the node gives, translated (the app says them after the error).
        let hints = [
            E::Busy {
                path: String::new(),
            }
            .hint(),
            E::Db(sled::Error::Unsupported(String::new())).hint(),
            E::DiskFull {
                path: String::new(),
                free: 0,
                margin: 0,
            }
            .hint(),
            E::Corrupt(String::new()).hint(),
            E::TooNew(String::new()).hint(),
            E::NotOnRoster.hint(),
            E::NoOrg.hint(),
            E::Stopped.hint(),
            E::DiskFailed(String::new()).hint(),
        ];
        let io = |k: std::io::ErrorKind| {
            E::io(std::path::Path::new("x"), std::io::Error::from(k)).hint()
        };
        for h in hints.into_iter().chain([
            io(std::io::ErrorKind::NotFound),
            io(std::io::ErrorKind::PermissionDenied),
            io(std::io::ErrorKind::IsADirectory),
            io(std::io::ErrorKind::Other),
        ]) {
            let h = h.expect("a hint");
            assert!(crate::text::has_rtl(tr(Lang::Ar, h)), "no Arabic for: {h}");
        }
        let other = E::Denied("you may not post in #legal".into());
        assert_eq!(say_error(Lang::Ar, &other), other.to_string());
    }

    /// A translation that lost a place would drop what it says (the error, the file).
    #[test]
    fn translations_keep_every_place() {
        for (en, ar) in AR.iter().chain(AR_SAID) {
            assert_eq!(places(en), places(ar), "{en}");
        }
        assert_eq!(
            tr_with(Lang::Ar, "saved to {path}", &[("path", "/tmp/x.pdf")]),
            "حُفظ في /tmp/x.pdf"
        );
        assert_eq!(
            tr_with(Lang::En, "not shared: {error}", &[("error", "too big")]),
            "not shared: too big"
        );
        // A value is not filled again: a name that looks like a place stays the name.
        assert_eq!(
            tr_with(
                Lang::En,
                "{member}'s clock is {offset} behind",
                &[("member", "{offset}"), ("offset", "3 s")]
            ),
            "{offset}'s clock is 3 s behind"
        );
        assert_eq!(tr_with(Lang::En, "{a} {b", &[("a", "x")]), "x {b");
    }

    /// The string literals the app hands to a translating call (`t`, `tf`, `tr`,
    /// `tr_with`, with or without a language before them), read from its source.
    fn translated_in(src: &str, calls: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for call in calls {
            let mut from = 0;
            while let Some(i) = src[from..].find(call).map(|i| i + from) {
                from = i + call.len();
                let word_before = src[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
                if word_before {
                    continue;
                }
                let mut rest = src[from..].trim_start();
                // A language argument first: `lang,` or `self.state.lang,`.
                if let Some((arg, after)) = rest.split_once(',') {
                    if !arg.is_empty()
                        && arg
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    {
                        rest = after.trim_start();
                    }
                }
                let Some(body) = rest.strip_prefix('"') else {
                    continue;
                };
                let mut end = 0;
                let bytes = body.as_bytes();
                while bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                // The literal's value: the escapes the app's texts use.
                out.push(
                    body[..end]
                        .replace("\\\"", "\"")
                        .replace("\\n", "\n")
                        .replace("\\\\", "\\"),
                );
            }
        }
        out
    }

    fn sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("i18n.rs") {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                ));
            }
        }
    }

    /// Every text the app translates has an Arabic translation: a new label without one
    /// would show in English in the Arabic app, and nothing else would notice.
    #[test]
    fn every_translated_text_has_arabic() {
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        // The node's diagnostics, which the Network view says in the app's language.
        let diagnose = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/src/diagnose.rs");
        let mut seen = 0;
        let mut missing = Vec::new();
        let core = std::fs::read_to_string(diagnose).unwrap();
        let from_core = translated_in(&core, &["part("]);
        assert!(
            from_core.len() > 30,
            "the scan found {} findings",
            from_core.len()
        );
        for en in from_core
            .into_iter()
            .chain(majlis_core::diagnose::LINK_WORDS.map(String::from))
            .chain(majlis_core::diagnose::LISTEN_WORDS.map(String::from))
        {
            if !AR.iter().any(|(k, _)| *k == en) {
                missing.push(format!("{diagnose}: {en}"));
            }
        }
        for (path, src) in &files {
            for en in translated_in(src, &["t(", "tf(", "tr(", "tr_with("]) {
                seen += 1;
                if !AR.iter().any(|(k, _)| *k == en) {
                    missing.push(format!("{path}: {en}"));
                }
            }
        }
        assert!(seen > 150, "the scan found only {seen} texts");
        assert!(missing.is_empty(), "no Arabic for:\n{}", missing.join("\n"));
        // Roles are named through a table of the roster's own words.
        use majlis_core::roster::Role;
        for r in [
            Role::Admin,
            Role::Member,
            Role::Relay,
            Role::Guest,
            Role::Archive,
            Role::Bot,
        ] {
            let word = r.to_string();
            assert!(
                AR.iter().any(|(k, _)| *k == word),
                "no Arabic for the role {word}"
            );
        }
        // The scan itself: a call with a language first, and one without.
        assert_eq!(
            translated_in(
                r#"x(tr_with(lang, "a {b}", &[])); self.t("c"); wait("no")"#,
                &["t(", "tr_with("]
            ),
            ["c", "a {b}"]
        );
    }
}
