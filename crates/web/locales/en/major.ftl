# Incident management: the communication log of a major incident.
major-communications = Communication log
major-communications-none = No communication logged yet.
major-communication-add = Log a communication
major-action-record = Log communication
major-summary-help = What was said. E-mail and portal communications to customers, the service desk, management or stakeholders are also sent to them.
major-next-update = Next update by
major-next-update-in = { $minutes ->
    [one] in { $minutes } minute
   *[other] in { $minutes } minutes
}
major-next-update-overdue = The promised next update is overdue.
major-audience-customers = Customers
major-audience-service-desk = Service desk
major-audience-management = Management
major-audience-stakeholders = Stakeholders
major-audience-suppliers = Suppliers
major-medium-email = E-mail
major-medium-portal = Portal
major-medium-phone = Phone
major-medium-chat = Chat
major-medium-sms = SMS
major-medium-meeting = Meeting
field-medium = Channel
field-summary = Summary
field-next-update-minutes = Next update
event-incident-major-update = Major incident update
